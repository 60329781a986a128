"""The workbench's screens."""
