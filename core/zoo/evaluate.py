"""Quality figures of the shipped zoo: ``python -m diffusionscope.core.zoo.evaluate``.

Prints what the zoo promises (and ``tests/test_zoo.py`` checks): generated digits are read as
the prompted digit by ``digits-features``, the ink has the prompted colour, FID in the
classifier's feature space orders real < generated < noise, ``digits-clip`` prefers matching
prompts, and sampling is fast on a CPU. The helpers are shared with the tests so both measure
the same thing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from . import DIGITS_CLIP, DIGITS_FEATURES, DIGITS_LDM, ZOO_DIR
from .prompts import COLORS, ink_color_name, make_prompt, random_samples


def load_ldm(folder: Path = DIGITS_LDM):  # -> StableDiffusionPipeline
    from diffusers import StableDiffusionPipeline

    pipeline = StableDiffusionPipeline.from_pretrained(folder)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def generate(
    pipeline,
    prompts: Sequence[str],
    seed: int,
    steps: int = 20,
    guidance_scale: float = 5.0,
    batch: int = 50,
) -> np.ndarray:
    """uint8 ``[N, 32, 32, 3]``; image ``i`` comes from its own generator seeded ``seed + i``."""
    chunks = []
    for start in range(0, len(prompts), batch):
        chunk = list(prompts[start : start + batch])
        generators = [torch.Generator().manual_seed(seed + start + i) for i in range(len(chunk))]
        with torch.inference_mode():
            out = pipeline(
                chunk,
                num_inference_steps=steps,
                guidance_scale=guidance_scale,
                generator=generators,
                output_type="np",
            ).images
        chunks.append((np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8))
    return np.concatenate(chunks)


def prompt_grid(
    per_prompt: int, background: str = "white"
) -> tuple[list[str], list[int], list[str]]:
    """``per_prompt`` copies of every (digit, colour) prompt, with their digits and colours."""
    grid = [(d, c) for d in range(10) for c in COLORS for _ in range(per_prompt)]
    prompts = [make_prompt(d, c, background=background) for d, c in grid]
    return prompts, [d for d, _ in grid], [c for _, c in grid]


def nchw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)


def digit_accuracy(images: np.ndarray, digits: Sequence[int], classifier) -> np.ndarray:
    """Per-digit share of images the classifier reads as the prompted digit."""
    predicted = classifier.classify(nchw(images)).numpy()
    digits = np.asarray(digits)
    return np.array([np.mean(predicted[digits == d] == d) for d in range(10)])


def colour_accuracy(images: np.ndarray, colors: Sequence[str]) -> float:
    named = [ink_color_name(image) for image in images]
    return float(np.mean([a == b for a, b in zip(named, colors, strict=True)]))


def fid_triplet(
    generated: np.ndarray, classifier, real_count: int = 600, seed: int = 5
) -> dict[str, float]:
    """FID(real half, other real half) < FID(generated, real) < FID(uniform noise, real).

    Computed by torchmetrics' ``FrechetInceptionDistance`` with the digit classifier as its
    feature network, as the metrics mode does.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    real = np.stack([s.image for s in random_samples(real_count, seed=seed)])
    noise = np.random.default_rng(seed).integers(0, 256, size=generated.shape, dtype=np.uint8)
    metric = FrechetInceptionDistance(feature=classifier, reset_real_features=False)
    metric.update(nchw(real[: real_count // 2]), real=True)
    distances = {}
    for name, images in (
        ("real_halves", real[real_count // 2 :]),
        ("generated", generated),
        ("noise", noise),
    ):
        metric.reset()
        metric.update(nchw(images), real=False)
        distances[name] = float(metric.compute())
    return distances


def clip_match_rates(
    count: int = 200, seed: int = 11, folder: Path = DIGITS_CLIP
) -> dict[str, float]:
    """Share of real images whose own prompt outscores one with another digit, another colour,
    or both (everything else equal)."""
    from .clip import load_digits_clip

    model, processor = load_digits_clip(folder)
    rng = np.random.default_rng(seed)
    samples = random_samples(count, seed=seed)
    other_digits = [(s.digit + int(rng.integers(1, 10))) % 10 for s in samples]
    other_colors = [
        [c for c in COLORS if c != s.color][int(rng.integers(len(COLORS) - 1))] for s in samples
    ]
    variants = {
        "digit": [(d, s.color) for s, d in zip(samples, other_digits, strict=True)],
        "colour": [(s.digit, c) for s, c in zip(samples, other_colors, strict=True)],
        "both": list(zip(other_digits, other_colors, strict=True)),
    }

    def scores(texts: list[str]) -> torch.Tensor:
        tokens = processor(text=texts, return_tensors="pt", padding=True)
        return torch.nn.functional.cosine_similarity(
            image_embeds, model.get_text_features(**tokens)
        )

    with torch.no_grad():
        pixels = processor(images=[s.image for s in samples], return_tensors="pt").pixel_values
        image_embeds = model.get_image_features(pixel_values=pixels)
        right = scores([s.prompt for s in samples])
        rates = {}
        for name, pairs in variants.items():
            wrong = [
                make_prompt(d, c, s.thickness, s.background)
                for (d, c), s in zip(pairs, samples, strict=True)
            ]
            rates[name] = float((right > scores(wrong)).float().mean())
    return rates


def main(argv: list[str] | None = None) -> int:
    from .features import load_digits_features

    parser = argparse.ArgumentParser(
        prog="python -m diffusionscope.core.zoo.evaluate", description=__doc__
    )
    parser.add_argument("--per-prompt", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance-scale", type=float, default=5.0)
    parser.add_argument(
        "--root",
        type=Path,
        default=ZOO_DIR,
        help="a zoo folder (e.g. a trial build's --out); models it lacks come from the shipped zoo",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(2)

    def under_root(path: Path) -> Path:
        """The trial build's model where it has one, else the shipped one (``--only ldm``)."""
        candidate = args.root / path.relative_to(ZOO_DIR)
        return candidate if candidate.exists() else path

    pipeline = load_ldm(under_root(DIGITS_LDM))
    classifier = load_digits_features(folder=under_root(DIGITS_FEATURES))

    started = time.perf_counter()
    generate(pipeline, [make_prompt(d % 10, "red") for d in range(16)], seed=0, steps=25, batch=16)
    print(f"16 images, 25 steps, guidance 5: {time.perf_counter() - started:.1f} s")

    prompts, digits, colors = prompt_grid(args.per_prompt)
    images = generate(
        pipeline, prompts, seed=0, steps=args.steps, guidance_scale=args.guidance_scale
    )
    per_digit = digit_accuracy(images, digits, classifier)
    print(f"digit accuracy {per_digit.mean():.3f} per digit {np.round(per_digit, 2).tolist()}")
    print(f"colour accuracy {colour_accuracy(images, colors):.3f}")
    black_prompts, _, black_colors = prompt_grid(1, background="black")
    black = generate(
        pipeline, black_prompts, seed=10_000, steps=args.steps, guidance_scale=args.guidance_scale
    )
    print(f"colour accuracy on black backgrounds {colour_accuracy(black, black_colors):.3f}")
    fids = fid_triplet(images, classifier)
    print("FID " + ", ".join(f"{name} {value:.2f}" for name, value in fids.items()))
    rates = clip_match_rates(folder=under_root(DIGITS_CLIP))
    print(
        "CLIP matching prompt wins against wrong "
        + ", ".join(f"{k} {v:.3f}" for k, v in rates.items())
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
