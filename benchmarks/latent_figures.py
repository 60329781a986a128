"""The latent mode's acceptance figures on the digits model, each beside its baseline: slerp vs
lerp step ratios (seed noise with and without guidance, VAE latents of real digits), DDIM
inversion vs fresh noise, a text direction's monotonicity, and both OOD scores' AUROC against
noise and against rendered letters/shapes; then the wall time of the default CLI run."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time

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
    ink_mask,
    letters_and_shapes,
    make_prompt,
    random_samples,
)

PAIRS = [(i, i + 1) for i in range(0, 24, 2)]


def _features(net: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(images).permute(0, 3, 1, 2)).numpy()


def _ratios(net: torch.nn.Module, strips: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    return {m: np.array([smoothness(_features(net, s))["max_mean_ratio"] for s in strips[m]])
            for m in strips}  # fmt: skip


def _print_ratios(label: str, ratios: dict[str, np.ndarray]) -> None:
    wins = float(np.mean(ratios["slerp"] < ratios["lerp"]))
    print(f"   {label:<34} slerp {ratios['slerp'].mean():.3f}  lerp {ratios['lerp'].mean():.3f}"
          f"  ratio {ratios['slerp'].mean() / ratios['lerp'].mean():.3f}  slerp smoother in "
          f"{wins:.0%} of {len(ratios['slerp'])} pairs")  # fmt: skip


def seed_and_vae_paths(pipeline, net) -> None:
    for guidance in (1.0, 5.0):
        settings = GenerationSettings(steps=10, guidance_scale=guidance)
        strips = {m: [explore.seed_strip(pipeline, settings, make_prompt(7, "red"), pair, 9, m,
                                         (32, 32)) for pair in PAIRS] for m in ("slerp", "lerp")}  # fmt: skip
        _print_ratios(f"seed noise, guidance {guidance:g}", _ratios(net, strips))
    images = np.stack([s.image for s in random_samples(2 * len(PAIRS), seed=5)])
    latents = explore.encode_images(pipeline, images)
    strips = {m: [explore.decode_latents(pipeline, torch.cat(path(latents[i : i + 1],
                                                                  latents[i + 1 : i + 2], 9, m)))
                  for i in range(0, len(latents), 2)] for m in ("slerp", "lerp")}  # fmt: skip
    _print_ratios("VAE latents of real digits", _ratios(net, strips))


def inversion(pipeline, net) -> None:
    samples = random_samples(40, seed=21)
    images = np.stack([s.image for s in samples])
    prompts = [s.prompt for s in samples]
    labels = np.array([s.digit for s in samples])
    noise = explore.ddim_invert(pipeline, explore.encode_images(pipeline, images), prompts, 20)
    rebuilt = explore.ddim_regenerate(pipeline, [noise], prompts, 20, seed=0)
    fresh = explore.ddim_regenerate(pipeline, [torch.randn_like(noise)], prompts, 20, seed=0)
    for label, out in (("DDIM inversion", rebuilt), ("fresh noise, same prompt", fresh)):
        agree = float(np.mean(net.classify(torch.from_numpy(out).permute(0, 3, 1, 2)).numpy()
                              == labels))  # fmt: skip
        mse = float(np.mean((out.astype(float) - images) ** 2) / 255**2)
        print(f"   {label:<34} classifier agrees with the label {agree:.0%} of "
              f"{len(samples)}; pixel MSE {mse:.4f}")  # fmt: skip


def _redness(image: np.ndarray) -> float:
    ink = image[ink_mask(image)].astype(float)
    return float((ink[:, 0] - ink[:, 2]).mean()) if len(ink) else 0.0


def directions(pipeline) -> None:
    settings = GenerationSettings(steps=15, guidance_scale=5.0)
    targets = [(7, "red"), (2, "blue"), (4, "green"), (0, "purple"), (3, "yellow"), (8, "red"),
               (5, "green"), (9, "blue")]  # fmt: skip
    strengths = [0.0, 1.0, 2.0, 3.0]
    cases = (("thick", "thin", ink_fraction, [make_prompt(d, c) for d, c in targets]),
             ("red", "blue", _redness, [make_prompt(d, "green") for d, _ in targets]))  # fmt: skip
    for positive, negative, measure, prompts in cases:
        grid = explore.direction_sweep(pipeline, settings, (positive, negative), prompts,
                                       strengths, seed=4)  # fmt: skip
        monotone = 0
        for row in grid:
            values = [measure(image) for image in row]
            monotone += int(all(b >= a for a, b in zip(values, values[1:], strict=False))
                            and values[-1] > values[0])  # fmt: skip
        print(f"   direction {positive}-{negative} ({measure.__name__}) monotone for "
              f"{monotone}/{len(prompts)} prompts over strengths {strengths}")  # fmt: skip


def ood(pipeline, net) -> None:
    reference = np.stack([s.image for s in random_samples(500, seed=31)])
    inside = np.stack([s.image for s in random_samples(200, seed=32)])
    outsides = {"uniform noise": np.random.default_rng(0).integers(0, 256, (200, 32, 32, 3),
                                                                   dtype=np.uint8),
                "letters and shapes": letters_and_shapes(200)}  # fmt: skip
    mahalanobis = fit_mahalanobis(_features(net, reference))
    latent = fit_mahalanobis(explore.encode_images(pipeline, reference).numpy())

    def scores(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (mahalanobis.score(_features(net, images)),
                latent.score(explore.encode_images(pipeline, images).numpy()))  # fmt: skip

    in_m, in_z = scores(inside)
    for label, images in outsides.items():
        out_m, out_z = scores(images)
        print(f"   OOD AUROC vs {label:<20} Mahalanobis {auroc(in_m, out_m):.3f}  latent Mahalanobis "
              f"{auroc(in_z, out_z):.3f}")  # fmt: skip


def cli_wall_time() -> None:
    with tempfile.TemporaryDirectory() as root:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "diffusionscope", "run", "--modes", "latent",
                        "--runs-root", root, "--quiet"], check=True, capture_output=True)  # fmt: skip
        seconds = time.perf_counter() - started
    print(f"   default `run --modes latent` on the digits model: {seconds:.1f} s")


def main() -> None:
    torch.set_num_threads(2)
    pipeline = load_pipeline(str(DIGITS_LDM), "cpu", "fp32").pipeline
    pipeline.set_progress_bar_config(disable=True)
    net = load_digits_features("cpu")
    seed_and_vae_paths(pipeline, net)
    inversion(pipeline, net)
    directions(pipeline)
    ood(pipeline, net)
    cli_wall_time()
