"""Attention mode: true cross-attention probability maps per prompt word, timestep and layer
group, overlaid on the generated image, with entropy and top-10% mass per word and step.

Supported: UNet pipelines with cross-attention ``attn2`` layers (Stable Diffusion 1.x/2.x, SDXL
and their variants) and transformer pipelines whose blocks have ``attn2`` cross-attention
(PixArt). Joint-attention transformers (SD3, Flux) are refused with one line.

``results["attention"]``::

    {"prompt", "pipeline", "words": [labels], "dropped_words", "tokens": [every position],
     "steps", "selected_steps": [denoiser-call indices], "timesteps": [scheduler timesteps],
     "groups": ["8x8", "4x4"], "layers": {group: [layer names]}, "guided": bool,
     "measures": {word: {"entropy": [per step], "top10_mass": [per step], "aggregate_entropy"}},
     "overlap": {"wordA|wordB": histogram intersection of the aggregate maps}}

``artifacts/attention_maps.npz`` holds ``image`` [H,W,3], ``words``, ``timesteps``,
``per_step`` [words, steps, H, W] and ``aggregate`` [words, H, W] (normalised, image size),
``words_<h>x<w>`` [words, steps, h, w] per group, and ``raw_<h>x<w>`` [steps, tokens, h, w]
(every token, start/end/padding included, summed over the group's layers).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from diffusionscope.core.errors import InputError
from diffusionscope.core.options import Option

if TYPE_CHECKING:
    from diffusionscope.core.modes import ModeResult, RunContext

DESCRIPTION = "cross-attention probability maps per prompt word, timestep and layer group"
NEEDS_PIPELINE = True
DEFAULT_PROMPT = "a red seven on a white background"


OPTIONS: tuple[Option, ...] = (
    Option("words", "comma-separated words to map", default_text="default: all but articles"),
    Option(
        "attention_steps",
        "how many timesteps to keep, spread over the run, or a comma list of step indices",
        default_text="default 4",
    ),  # fmt: skip
)


def validate(args: argparse.Namespace) -> None:
    if args.prompt is None:
        from pathlib import Path

        from diffusionscope.core.zoo import DIGITS_LDM

        if args.model and Path(args.model).resolve() == DIGITS_LDM.resolve():
            args.prompt = DEFAULT_PROMPT
        else:
            raise InputError("--prompt: the attention mode needs a prompt")
    if not args.prompt.strip():
        raise InputError("--prompt: empty prompt; the attention mode maps the prompt's words")
    requested = args.attention_steps
    if requested and requested.isdigit() and int(requested) <= 0:
        raise InputError(f"--attention-steps: must be positive, got {requested}")


def run(ctx: RunContext) -> ModeResult:
    from diffusionscope.core.attention.report import analyse
    from diffusionscope.core.modes import ModeResult

    results, report = analyse(ctx)
    return ModeResult(results=results, report=report)


def check_model(args: argparse.Namespace, model: Any) -> None:
    """Refuse from the configs (``core.families.ModelConfigs``) the pipelines the run would
    refuse after loading (``report.SUPPORTED``)."""
    from diffusionscope.core.attention.report import SUPPORTED

    if (
        model is not None
        and model.pipeline_class
        and not any(name in model.pipeline_class for name in SUPPORTED)
    ):
        raise InputError(
            f"model {model.source!r}: {model.pipeline_class} is not supported by the attention "
            f"mode (supported: {', '.join(SUPPORTED)})"
        )
