"""diffusionscope's engine: loading, runs and the analysis modes. Never imports Textual."""

__version__ = "0.1.0"
