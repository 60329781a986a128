"""diffusionscope: analyse pretrained diffusion models, in a terminal workbench or headless.

The repository keeps the engine in ``core/`` and the workbench in ``tui/``; they install as
``diffusionscope.core`` and ``diffusionscope.tui`` so that no folder of the user's (a project
with its own ``core`` package, say) can shadow them. This package is only the entry point.
"""

__version__ = "0.1.0"
