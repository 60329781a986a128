"""The shipped digits models meet their quality bar, offline, through the public loaders."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import torch

from diffusionscope.core.generation import GenerationSettings, generate
from diffusionscope.core.zoo import (
    DIGITS_CLIP,
    DIGITS_FEATURES,
    DIGITS_LDM,
    DIGITS_REFERENCE,
    ZOO_DIR,
)
from diffusionscope.core.zoo.evaluate import (
    clip_match_rates,
    colour_accuracy,
    digit_accuracy,
    fid_triplet,
    nchw,
    prompt_grid,
)
from diffusionscope.core.zoo.prompts import (
    COLORS,
    DIGIT_WORDS,
    VOCABULARY,
    ink_color_name,
    ink_mask,
    make_prompt,
    random_samples,
)

PER_PROMPT = 2
SETTINGS = GenerationSettings(steps=20, guidance_scale=5.0)


@pytest.fixture(scope="module")
def generated(digits_pipeline) -> tuple[np.ndarray, list[int], list[str]]:
    """Two images for every (digit, colour) prompt on a white background."""
    prompts, digits, colors = prompt_grid(PER_PROMPT)
    images = generate(digits_pipeline, range(len(prompts)), SETTINGS, prompts)
    return images, digits, colors


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_loads_with_plain_diffusers_offline(monkeypatch) -> None:
    """No warnings (missing components, unexpected config keys) and no network."""
    from diffusers import StableDiffusionPipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    records = _Records()
    loggers = [logging.getLogger(name) for name in ("diffusers", "transformers")]
    for logger in loggers:
        logger.addHandler(records)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pipe = StableDiffusionPipeline.from_pretrained(DIGITS_LDM)
    finally:
        for logger in loggers:
            logger.removeHandler(records)
    assert not records.messages, records.messages
    assert not [str(w.message) for w in caught if "safety" in str(w.message).lower()]
    assert pipe.safety_checker is None and pipe.feature_extractor is None
    assert pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size
    assert any("CrossAttn" in block for block in pipe.unet.config.down_block_types)
    scheduler = pipe.scheduler.config
    assert (scheduler.beta_schedule, scheduler.beta_start, scheduler.beta_end) == (
        "scaled_linear",
        0.00085,
        0.012,
    )
    assert scheduler.num_train_timesteps == 1000 and scheduler.prediction_type == "epsilon"
    assert pipe.unet.config.sample_size * pipe.vae_scale_factor == 32


def test_every_grammar_word_is_one_token() -> None:
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(DIGITS_LDM / "tokenizer")
    for word in VOCABULARY:
        assert len(tokenizer(word, add_special_tokens=False).input_ids) == 1, word
    longest = make_prompt(7, "purple", "thick", "black")
    ids = tokenizer(longest).input_ids
    assert len(ids) <= tokenizer.model_max_length and ids[-1] == tokenizer.eos_token_id


def test_weights_are_small_safetensors() -> None:
    weights = [
        p for p in ZOO_DIR.rglob("*") if p.suffix in (".safetensors", ".bin", ".pt", ".ckpt")
    ]
    assert weights and all(p.suffix == ".safetensors" for p in weights)
    assert sum(p.stat().st_size for p in weights) < 20 * 2**20


def test_renderer_is_deterministic_and_ink_is_measurable() -> None:
    first, again = random_samples(40, seed=3), random_samples(40, seed=3)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(first, again, strict=True))
    assert all(s.image.shape == (32, 32, 3) and s.image.dtype == np.uint8 for s in first)
    assert all(ink_color_name(s.image) == s.color for s in first)
    assert all(0.03 < ink_mask(s.image).mean() < 0.6 for s in first)
    blank = np.full((32, 32, 3), 255, np.uint8)
    assert not ink_mask(blank).any() and ink_color_name(blank) == "none"


def test_feature_net_contract(digits_classifier) -> None:
    from torchmetrics.image.fid import FrechetInceptionDistance

    images = torch.randint(0, 256, (5, 3, 48, 40), dtype=torch.uint8)
    features = digits_classifier(images)
    assert features.shape == (5, digits_classifier.num_features) and features.dtype == torch.float32
    assert digits_classifier.logits(images).shape == (5, 10)
    assert digits_classifier.classify(images).dtype == torch.long
    real = nchw(np.stack([s.image for s in random_samples(64, seed=21)]))
    metric = FrechetInceptionDistance(feature=digits_classifier)
    metric.train()  # must not switch the network to batch statistics
    metric.update(real[:32], real=True)
    metric.update(real[32:], real=False)
    assert 0 <= float(metric.compute()) < 1e4
    assert not digits_classifier.training


def test_classifier_reads_real_renderings(digits_classifier) -> None:
    samples = random_samples(300, seed=42)
    predicted = digits_classifier.classify(nchw(np.stack([s.image for s in samples]))).numpy()
    assert np.mean(predicted == np.array([s.digit for s in samples])) >= 0.95


def test_generated_digits_are_recognisable(generated, digits_classifier) -> None:
    images, digits, _ = generated
    per_digit = digit_accuracy(images, digits, digits_classifier)
    assert per_digit.mean() >= 0.80, f"per-digit accuracy {np.round(per_digit, 2)}"


def test_colour_attributes_are_obeyed(generated) -> None:
    images, _, colors = generated
    assert colour_accuracy(images, colors) >= 0.80


def test_fid_orders_real_generated_and_noise(generated, digits_classifier) -> None:
    fids = fid_triplet(generated[0], digits_classifier)
    assert fids["real_halves"] < fids["generated"] < fids["noise"], fids
    assert fids["generated"] < 0.5 * fids["noise"], fids


def test_clip_prefers_matching_prompts() -> None:
    rates = clip_match_rates(count=100)
    assert min(rates.values()) >= 0.90, rates


def test_clip_score_runs_through_torchmetrics() -> None:
    from torchmetrics.multimodal.clip_score import CLIPScore

    from diffusionscope.core.zoo.clip import load_digits_clip

    samples = random_samples(8, seed=4)
    images = nchw(np.stack([s.image for s in samples]))
    matching, mismatched = (
        CLIPScore(model_name_or_path=load_digits_clip),
        CLIPScore(model_name_or_path=load_digits_clip),
    )
    matching.update(images, [s.prompt for s in samples])
    wrong = [make_prompt((s.digit + 5) % 10, s.color, s.thickness, s.background) for s in samples]
    mismatched.update(images, wrong)
    assert float(matching.compute()) > float(mismatched.compute())


def test_reference_set_and_prompts_ship() -> None:
    pngs = sorted(DIGITS_REFERENCE.glob("*.png"))
    assert len(pngs) >= 500
    from PIL import Image

    first = np.asarray(Image.open(pngs[0]))
    assert first.shape == (32, 32, 3) and first.dtype == np.uint8
    prompts = (ZOO_DIR / "prompts.txt").read_text().splitlines()
    assert len(prompts) == 10 * len(COLORS)
    assert all(any(w in p.split() for w in DIGIT_WORDS) and "background" in p for p in prompts)
    assert (DIGITS_FEATURES / "model.safetensors").is_file()
    assert (DIGITS_CLIP / "model.safetensors").is_file()
