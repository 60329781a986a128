"""Speed targets, measured side by side with their baselines: ``python -m benchmarks [name]``."""
