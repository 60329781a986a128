"""Widgets shared by the workbench's screens."""
