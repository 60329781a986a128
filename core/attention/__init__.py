"""Attention mode: where each prompt word is attended, per timestep and layer group, overlaid on
the generated image, with entropy and top-10% mass per word and step.

Every family is captured from what its layers compute: cross-attention (SD 1.x/2.x, SDXL, LCM,
PixArt-α/Σ, Sana), joint attention (SD3, SD3.5 and Flux double-stream blocks) and Flux's
single-stream blocks, where text and image tokens share one sequence. For joint attention the
maps are the text keys' probabilities from the softmax over all keys, renormalised over the
text; the unrenormalised share is kept too. Self-attention layers (SD3.5-Medium's ``attn2``,
Sana's linear attention) have no text keys and are named as not captured.

``results["attention"]``::

    {"prompt", "pipeline", "words": [labels], "word_positions": {label: [text positions]},
     "dropped_words", "tokens": [every text position],
     "text_sources": [{"encoders", "tokenizer", "start", "length", "given"}], "shown",
     "steps", "selected_steps": [denoiser-call indices], "timesteps": [scheduler timesteps],
     "groups": ["8x8", "4x4"], "layers": {group: [layer names]}, "layer_kinds": {kind: count},
     "not_captured": {layer: reason}, "guided": bool,
     "text_share": {"per_step": [...], "all_steps"}, "capture_bytes_per_selected_step",
     "measures": {word: {"entropy": [per step], "top10_mass": [per step], "aggregate_entropy"}},
     "overlap": {"wordA|wordB": histogram intersection of the aggregate maps}}

Measures of a map with no mass are ``null``. ``artifacts/attention_maps.npz`` holds ``image``
[H,W,3], ``words``, ``timesteps``, ``tokens``, ``per_step`` [words, steps, H, W] and
``aggregate`` [words, H, W] (normalised, image size), ``words_<h>x<w>`` [words, steps, h, w]
per group, ``raw_<h>x<w>`` [steps, tokens, h, w] (the shown, renormalised probabilities of
every text position, summed over the group's layers) and ``share_<h>x<w>`` (the same before
renormalising: full-softmax probabilities of the text keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..options import Generation, Option, RunOptions

if TYPE_CHECKING:
    from ..families import ModelConfigs
    from ..modes import ModeResult, RunContext

DESCRIPTION = "text-image attention probability maps per prompt word, timestep and layer group"
NEEDS_PIPELINE = True

ATTENTION_STEPS = Option(
    "attention_steps",
    "how many timesteps to capture, spread over the run, 'all', or a comma list of step "
    "indices; the aggregate map is their mean",
    kind="count_or_all",
    words=("all",),
    default=4,
)
OPTIONS: tuple[Option, ...] = (
    Option("words", "comma-separated words to map", unset="all but articles"),
    ATTENTION_STEPS,
)


@dataclass(frozen=True)
class Options:
    """What the attention mode reads."""

    run: RunOptions
    generation: Generation
    prompt: str | None
    words: str | None
    attention_steps: int | str | tuple[int, ...]


def validate(args: Options) -> None:
    if args.prompt is None:
        raise InputError("--prompt: the attention mode needs a prompt")
    if not args.prompt.strip():
        raise InputError("--prompt: empty prompt; the attention mode maps the prompt's words")
    from .words import prompt_spans

    words = [word for word, _, _ in prompt_spans(args.prompt)]
    if not words:
        raise InputError(f"--prompt: {args.prompt!r} has no words to map")
    for requested in (args.words or "").split(","):
        text = requested.strip()
        if text and text.lower() not in {word.lower() for word in words}:
            raise InputError(
                f"--words: {text!r} is not a word of the prompt (words: {', '.join(words)})"
            )


def check_model(args: Options, model: ModelConfigs | None) -> None:
    """Refuse, in one line and from the configs alone, a model whose attention to the prompt
    cannot be captured (see :mod:`.support`); None (no model named) is the CLI's to refuse."""
    if model is None:
        return
    from .support import unsupported_reason

    reason = unsupported_reason(model)
    if reason:
        raise InputError(f"model {model.source!r}: {reason}")


def planned_work(args: Options) -> list[dict[str, Any]]:
    """One image, its denoiser steps the work (whole-run progress)."""
    from ..events import planned_phase

    return [planned_phase("generate", 1, "img", work=args.generation.steps)]


def run(ctx: RunContext) -> ModeResult:
    from ..modes import ModeResult
    from .report import analyse

    results, report = analyse(ctx)
    return ModeResult(results=results, report=report)
