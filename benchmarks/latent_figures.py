"""The latent mode's acceptance figures, each beside its baseline. On the digits model: slerp vs
lerp step ratios (seed noise with and without guidance, VAE latents of real digits), inversion
vs fresh noise, the directions task's attribute vs the ink fraction (and vs the old feature axis
of the bare words' images), both OOD scores' AUROC against noise and against rendered
letters/shapes and the share of new in-distribution images they flag (held-out calibration vs
the reference's own 95th percentile); on the tiny random pipeline of every family: the largest
pixel difference between a seed strip's ends and the pipeline's own images; then the wall time
of the default CLI run."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from diffusionscope.core.generation import GenerationSettings
from diffusionscope.core.latent import explore
from diffusionscope.core.latent.ood import auroc, fit_mahalanobis
from diffusionscope.core.latent.paths import path, smoothness
from diffusionscope.core.loading import load_pipeline
from diffusionscope.core.zoo import DIGITS_LDM
from diffusionscope.core.zoo.features import load_digits_features
from diffusionscope.core.zoo.prompts import (
    ink_fraction,
    letters_and_shapes,
    make_prompt,
    random_samples,
)

PAIRS = [(i, i + 1) for i in range(0, 24, 2)]


def _features(net: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(images).permute(0, 3, 1, 2)).numpy()


def _ratios(net: torch.nn.Module, strips: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    return {
        m: np.array([smoothness(_features(net, s))["max_mean_ratio"] for s in strips[m]])
        for m in strips
    }


def _print_ratios(label: str, ratios: dict[str, np.ndarray]) -> None:
    wins = float(np.mean(ratios["slerp"] < ratios["lerp"]))
    print(
        f"   {label:<34} slerp {ratios['slerp'].mean():.3f}  lerp {ratios['lerp'].mean():.3f}"
        f"  ratio {ratios['slerp'].mean() / ratios['lerp'].mean():.3f}  slerp smoother in "
        f"{wins:.0%} of {len(ratios['slerp'])} pairs"
    )


def seed_and_vae_paths(pipeline, net) -> None:
    for guidance in (1.0, 5.0):
        settings = GenerationSettings(steps=10, guidance_scale=guidance)
        strips = {
            m: [
                explore.seed_strip(pipeline, settings, make_prompt(7, "red"), pair, 9, m)
                for pair in PAIRS
            ]
            for m in ("slerp", "lerp")
        }
        _print_ratios(f"seed noise, guidance {guidance:g}", _ratios(net, strips))
    images = np.stack([s.image for s in random_samples(2 * len(PAIRS), seed=5)])
    latents = explore.encode_images(pipeline, images)
    strips = {
        m: [
            explore.decode_latents(
                pipeline, torch.cat(path(latents[i : i + 1], latents[i + 1 : i + 2], 9, m))
            )
            for i in range(0, len(latents), 2)
        ]
        for m in ("slerp", "lerp")
    }
    _print_ratios("VAE latents of real digits", _ratios(net, strips))


def inversion(pipeline, net) -> None:
    samples = random_samples(40, seed=21)
    images = np.stack([s.image for s in samples])
    prompts = [s.prompt for s in samples]
    labels = np.array([s.digit for s in samples])
    noise = explore.invert(pipeline, explore.encode_images(pipeline, images), prompts, 20)
    rebuilt = explore.regenerate(pipeline, noise, prompts, 20, (32, 32))
    fresh = explore.regenerate(pipeline, torch.randn_like(noise), prompts, 20, (32, 32))
    errors = []
    for label, out in (("DDIM inversion", rebuilt), ("fresh noise, same prompt", fresh)):
        agree = float(
            np.mean(net.classify(torch.from_numpy(out).permute(0, 3, 1, 2)).numpy() == labels)
        )
        errors.append(float(np.mean((out.astype(float) - images) ** 2) / 255**2))
        print(
            f"   {label:<34} classifier agrees with the label {agree:.0%} of "
            f"{len(samples)}; pixel MSE {errors[-1]:.5f}"
        )
    print(f"   inversion reconstructs {errors[1] / errors[0]:.1f}x better than fresh noise (MSE)")


DIRECTION_PROMPTS = [make_prompt(d, c) for d, c in ((7, "red"), (2, "blue"), (4, "green"))]
STRENGTHS = [0.0, 0.5, 1.0, 1.5, 2.0]


def _spearman(values) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(STRENGTHS, values).statistic)


def directions(pipeline, net) -> None:
    """The default CLI case (three prompts, strengths 0..2, seed 0), 15 steps: per row the
    Spearman of the ink fraction, of the task's attribute, and of the old measure (the
    projection on the feature axis between the bare words' images over four seeds)."""
    from diffusionscope.core.generation import generate

    settings = GenerationSettings(steps=15, guidance_scale=5.0)
    for pair in (("thick", "thin"), ("thin", "thick")):
        grid = explore.direction_sweep(pipeline, settings, pair, DIRECTION_PROMPTS, STRENGTHS, 0)
        high, low = explore.contrast_images(pipeline, settings, pair, DIRECTION_PROMPTS, 0)
        seeds = [1000 + i for i in range(4)]
        axis = _features(net, generate(pipeline, seeds, settings, [pair[0]] * 4)).mean(
            0
        ) - _features(net, generate(pipeline, seeds, settings, [pair[1]] * 4)).mean(0)
        for prompt, row, h, lo in zip(DIRECTION_PROMPTS, grid, high, low, strict=True):
            ink = [ink_fraction(image) * image.shape[0] * image.shape[1] for image in row]
            attribute = explore.attribute(pipeline, row, h, lo)
            print(
                f"   {pair[0]}|{pair[1]} {prompt:<36} ink px {[round(v) for v in ink]} "
                f"Spearman ink {_spearman(ink):+.2f}  attribute {_spearman(attribute):+.2f}  "
                f"old feature axis {_spearman(_features(net, row) @ axis):+.2f}"
            )


def ood(pipeline, net) -> None:
    from diffusionscope.core.images import find_images, load_images
    from diffusionscope.core.latent.ood import _fit
    from diffusionscope.core.zoo import DIGITS_REFERENCE

    reference = np.stack([s.image for s in random_samples(500, seed=31)])
    inside = np.stack([s.image for s in random_samples(200, seed=32)])
    outsides = {
        "uniform noise": np.random.default_rng(0).integers(
            0, 256, (200, 32, 32, 3), dtype=np.uint8
        ),
        "letters and shapes": letters_and_shapes(200),
    }
    mahalanobis = fit_mahalanobis(_features(net, reference))
    latent = fit_mahalanobis(explore.encode_images(pipeline, reference).numpy())

    def scores(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (
            mahalanobis.score(_features(net, images)),
            latent.score(explore.encode_images(pipeline, images).numpy()),
        )

    in_m, in_z = scores(inside)
    for label, images in outsides.items():
        out_m, out_z = scores(images)
        print(
            f"   OOD AUROC vs {label:<20} Mahalanobis {auroc(in_m, out_m):.3f}  latent Mahalanobis "
            f"{auroc(in_z, out_z):.3f}"
        )
    shipped, _ = load_images(find_images(DIGITS_REFERENCE), size=32)
    new = np.stack([s.image for s in random_samples(1000, seed=12345)])
    spaces = {
        "features": lambda x: _features(net, x),
        "VAE latents": lambda x: explore.encode_images(pipeline, x, 250).numpy(),
    }
    for label, embed in spaces.items():
        values, held = embed(shipped), embed(new)
        own = _fit(values, label)
        own_threshold = np.percentile(own.score(values), 95)
        model = fit_mahalanobis(values, name=label)
        print(
            f"   new in-distribution digits flagged ({label}, n={len(new)}): held-out "
            f"calibration {np.mean(model.score(held) > model.threshold):.1%} (expected "
            f"{model.expected_flag_rate:.1%}); reference's own 95th percentile "
            f"{np.mean(own.score(held) > own_threshold):.1%}"
        )


def families() -> None:
    """Seed strips on the tiny random pipeline of every family, 2 steps, guidance 3."""
    from diffusers import DiffusionPipeline

    from diffusionscope.core.images import float_to_uint8

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from family_pipelines import FAMILIES, build_family

    settings = GenerationSettings(steps=2, guidance_scale=3.0)
    with tempfile.TemporaryDirectory() as root:
        for name in FAMILIES:
            pipeline = DiffusionPipeline.from_pretrained(build_family(name, Path(root) / name))
            pipeline.set_progress_bar_config(disable=True)
            strip = explore.seed_strip(pipeline, settings, "a red seven", (3, 4), 3, "slerp")
            worst = 0
            for frame, seed in ((strip[0], 3), (strip[-1], 4)):
                with torch.inference_mode():
                    own = pipeline(
                        prompt="a red seven",
                        num_inference_steps=2,
                        guidance_scale=3.0,
                        generator=torch.Generator().manual_seed(seed),
                        output_type="np",
                    ).images[0]
                worst = max(worst, int(np.abs(float_to_uint8(own).astype(int) - frame).max()))
            print(
                f"   {name:<13} {strip.shape[1]}x{strip.shape[2]} px: largest pixel difference "
                f"between the strip's ends and the pipeline's own images {worst}"
            )


def cli_wall_time() -> None:
    with tempfile.TemporaryDirectory() as root:
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "diffusionscope",
                "run",
                "--modes",
                "latent",
                "--runs-root",
                root,
                "--quiet",
            ],
            check=True,
            capture_output=True,
        )
        seconds = time.perf_counter() - started
    print(f"   default `run --modes latent` on the digits model: {seconds:.1f} s")


def main() -> None:
    torch.set_num_threads(2)
    pipeline = load_pipeline(str(DIGITS_LDM), "cpu", "fp32").pipeline
    pipeline.set_progress_bar_config(disable=True)
    net = load_digits_features("cpu")
    seed_and_vae_paths(pipeline, net)
    inversion(pipeline, net)
    directions(pipeline, net)
    ood(pipeline, net)
    families()
    cli_wall_time()
