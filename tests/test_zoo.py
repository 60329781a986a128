"""The shipped digits models meet their quality bar, offline, through the public loaders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.generation import GenerationSettings, generate
from core.loading import load_pipeline
from core.metrics.frechet import fid_from_features, mean_and_covariance
from core.zoo import DIGITS_CLIP, DIGITS_FEATURES, DIGITS_LDM, DIGITS_REFERENCE, ZOO_DIR
from core.zoo.features import load_digits_features
from core.zoo.prompts import COLORS, DIGIT_WORDS, ink_color_name, make_prompt, random_samples

PER_PROMPT = 3
SETTINGS = GenerationSettings(steps=20, guidance_scale=5.0)


@pytest.fixture(scope="module")
def pipeline():
    return load_pipeline(str(DIGITS_LDM), "cpu", "fp32").pipeline


@pytest.fixture(scope="module")
def classifier():
    return load_digits_features("cpu")


@pytest.fixture(scope="module")
def generated(pipeline) -> tuple[np.ndarray, list[int], list[str]]:
    """Three images for every (digit, colour) prompt on a white background."""
    prompts, digits, colors = [], [], []
    for digit in range(10):
        for color in COLORS:
            for _ in range(PER_PROMPT):
                prompts.append(make_prompt(digit, color))
                digits.append(digit)
                colors.append(color)
    images = []
    for start in range(0, len(prompts), 50):
        chunk = prompts[start : start + 50]
        images.append(generate(pipeline, range(start, start + len(chunk)), SETTINGS, chunk))
    return np.concatenate(images), digits, colors


def _nchw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2)


def test_loads_with_plain_diffusers_offline() -> None:
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(DIGITS_LDM)
    assert pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size
    scheduler = pipe.scheduler.config
    assert (scheduler.beta_schedule, scheduler.beta_start, scheduler.beta_end) == (
        "scaled_linear", 0.00085, 0.012)  # fmt: skip
    assert scheduler.num_train_timesteps == 1000
    assert pipe.unet.config.sample_size * pipe.vae_scale_factor == 32


def test_weights_are_small_safetensors() -> None:
    weights = [
        p for p in ZOO_DIR.rglob("*") if p.suffix in (".safetensors", ".bin", ".pt", ".ckpt")
    ]
    assert weights and all(p.suffix == ".safetensors" for p in weights)
    assert sum(p.stat().st_size for p in weights) < 20 * 2**20


def test_generated_digits_are_recognisable(generated, classifier) -> None:
    images, digits, _ = generated
    predicted = classifier.classify(_nchw(images)).numpy()
    per_digit = [np.mean(predicted[np.asarray(digits) == d] == d) for d in range(10)]
    assert np.mean(per_digit) >= 0.80, f"per-digit accuracy {np.round(per_digit, 2)}"


def test_colour_attributes_are_obeyed(generated) -> None:
    images, _, colors = generated
    named = [ink_color_name(image) for image in images]
    assert np.mean([a == b for a, b in zip(named, colors, strict=True)]) >= 0.80


def test_fid_orders_noise_generated_and_real(generated, classifier) -> None:
    real = random_samples(600, seed=5)
    real_images = np.stack([s.image for s in real])
    with torch.no_grad():
        real_features = classifier(_nchw(real_images)).numpy()
        generated_features = classifier(_nchw(generated[0])).numpy()
        noise = np.random.default_rng(0).integers(0, 256, size=(150, 32, 32, 3), dtype=np.uint8)
        noise_features = classifier(_nchw(noise)).numpy()
    mu, sigma = mean_and_covariance(real_features[:300])
    real_halves = fid_from_features(real_features[300:], mu, sigma)
    model = fid_from_features(generated_features, mu, sigma)
    pure_noise = fid_from_features(noise_features, mu, sigma)
    assert real_halves < model < pure_noise
    assert model < 0.5 * pure_noise


def test_clip_prefers_matching_prompts() -> None:
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(DIGITS_CLIP).eval()
    processor = CLIPProcessor.from_pretrained(DIGITS_CLIP)
    samples = random_samples(100, seed=11)
    wins = 0
    rng = np.random.default_rng(0)
    for sample in samples:
        other_digit = (sample.digit + int(rng.integers(1, 10))) % 10
        other_color = [c for c in COLORS if c != sample.color][int(rng.integers(len(COLORS) - 1))]
        wrong = make_prompt(other_digit, other_color, sample.thickness, sample.background)
        inputs = processor(text=[sample.prompt, wrong], images=[sample.image], return_tensors="pt",
                           padding=True)  # fmt: skip
        with torch.no_grad():
            logits = model(**inputs).logits_per_image[0]
        wins += int(logits[0] > logits[1])
    assert wins / len(samples) >= 0.90


def test_reference_set_and_prompts_ship() -> None:
    pngs = list(DIGITS_REFERENCE.glob("*.png"))
    assert len(pngs) >= 500
    prompts = (ZOO_DIR / "prompts.txt").read_text().splitlines()
    assert len(prompts) == 10 * len(COLORS)
    assert all(any(w in p.split() for w in DIGIT_WORDS) and "background" in p for p in prompts)
    assert (DIGITS_FEATURES / "model.safetensors").is_file()
