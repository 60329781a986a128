"""Latent mode: interpolation math, smoothness, DDIM inversion, directions and OOD on the digits
model, the CLI, and bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diffusionscope.core.cli import main
from diffusionscope.core.errors import InputError
from diffusionscope.core.generation import GenerationSettings
from diffusionscope.core.latent import explore
from diffusionscope.core.latent.ood import (
    MIN_REFERENCE,
    auroc,
    fit_mahalanobis,
    latent_summary,
)
from diffusionscope.core.latent.paths import lerp, path, slerp, smoothness
from diffusionscope.core.metrics.features import get_extractor
from diffusionscope.core.metrics.reference import extract
from diffusionscope.core.zoo import DIGITS_REFERENCE
from diffusionscope.core.zoo.prompts import (
    ink_fraction,
    letters_and_shapes,
    make_prompt,
    random_samples,
)

SETTINGS = GenerationSettings(steps=15, guidance_scale=5.0)


def _features(classifier, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return classifier(torch.from_numpy(images).permute(0, 3, 1, 2)).numpy()


# ---- math ------------------------------------------------------------------------------------


def test_slerp_endpoints_norm_and_parallel_fallback() -> None:
    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    assert torch.allclose(slerp(a, b, 0.0), a) and torch.allclose(slerp(a, b, 1.0), b)
    middle = slerp(a, b, 0.5)
    assert middle.norm().item() == pytest.approx(1.0, abs=1e-6)  # lerp's would be 0.707
    assert lerp(a, b, 0.5).norm().item() == pytest.approx(0.5**0.5, abs=1e-6)
    # equal angles between consecutive frames: the defining property of slerp
    frames = torch.stack(path(a, b, 5, "slerp"))
    cosines = (frames[:-1] * frames[1:]).sum(1)
    assert torch.allclose(cosines, cosines[0].expand_as(cosines), atol=1e-6)
    same = slerp(a, a.clone(), 0.3)  # ω = 0: no division by sin ω
    assert torch.isfinite(same).all() and torch.allclose(same, a)
    nearly = slerp(a, a + 1e-9 * b, 0.5)
    assert torch.isfinite(nearly).all()
    zero = slerp(torch.zeros(3), b, 0.5)
    assert torch.allclose(zero, lerp(torch.zeros(3), b, 0.5))
    assert len(path(a, b, 5, "slerp")) == 5


def test_smoothness_finds_a_jump_and_handles_a_still_strip() -> None:
    even = np.linspace(0, 1, 8)[:, None] * np.ones((1, 4))
    jumpy = even.copy()
    jumpy[4:] += 3.0
    assert smoothness(even)["max_mean_ratio"] == pytest.approx(1.0)
    assert smoothness(jumpy)["max_mean_ratio"] > 3.0
    assert smoothness(jumpy)["ppl"] > smoothness(even)["ppl"]
    still = smoothness(np.ones((5, 4)))  # identical endpoints: every step 0, ratio defined as 1
    assert still["max_mean_ratio"] == 1.0 and still["path_length"] == 0.0


def test_mahalanobis_separates_a_shifted_gaussian() -> None:
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(16, 16))
    reference = rng.normal(size=(200, 16)) @ mixing
    inside = rng.normal(size=(100, 16)) @ mixing
    # out along the reference's least-variance direction: invisible to a Euclidean distance
    _, _, vt = np.linalg.svd(reference - reference.mean(0), full_matrices=False)
    outside = rng.normal(size=(100, 16)) @ mixing + 6.0 * vt[-1] * np.linalg.norm(mixing, 2) / 8
    model = fit_mahalanobis(reference)
    assert 0.0 <= model.shrinkage <= 1.0
    assert auroc(model.score(inside), model.score(outside)) > 0.95
    euclid = [np.linalg.norm(x - reference.mean(0), axis=1) for x in (inside, outside)]
    assert auroc(model.score(inside), model.score(outside)) > auroc(*euclid)
    latent = fit_mahalanobis(reference.reshape(200, 4, 4))
    assert latent.score(reference.reshape(200, 4, 4)).shape == (200,)
    assert latent.score(reference[:3] * 10).min() > latent.threshold
    described = model.describe()
    assert described["fitted"] == 150 and described["calibration"] == 50  # 200 split 3:1
    # k = ceil(0.95 * 51) = 49th smallest of the 50 held-out scores
    assert described["threshold"] == np.sort(model.scores)[48]
    assert described["expected_flag_rate"] == pytest.approx(2 / 51)
    assert described["p50"] <= described["threshold"] <= model.scores.max()
    with pytest.raises(InputError, match=f"at least {MIN_REFERENCE}"):
        fit_mahalanobis(reference[: MIN_REFERENCE - 1])


def test_large_latents_are_scored_on_block_means_and_spreads() -> None:
    """Up to 8 x 8 the latent itself is scored (the shipped model); larger latents on each
    channel's block means and standard deviations, 2·C·64 numbers at any size. Smoother
    latents (same mean and layout, a tenth of the texture) and a colour shift in one corner
    both stand out."""
    rng = np.random.default_rng(5)
    small = rng.normal(size=(3, 4, 8, 8)).astype(np.float32)
    assert np.array_equal(latent_summary(small), small.reshape(3, -1))
    reference = rng.normal(size=(160, 4, 32, 32)).astype(np.float32)
    summary = latent_summary(reference)
    assert summary.shape == (160, 2 * 4 * 64)
    assert np.allclose(
        summary[:, :256].reshape(160, 4, 8, 8),
        reference.reshape(160, 4, 8, 4, 8, 4).mean((3, 5)),
        atol=1e-6,
    )
    model = fit_mahalanobis(reference, summary=latent_summary)
    assert model.describe()["dims"] == 512
    inside = rng.normal(size=(40, 4, 32, 32)).astype(np.float32)
    smooth = inside * 0.1
    shifted = inside.copy()
    shifted[:, 0, :8, :8] += 1.0
    for outside in (smooth, shifted):
        assert auroc(model.score(inside), model.score(outside)) > 0.95


def test_cluster_means_catch_what_falls_between_the_clusters() -> None:
    """Noise features sit between a classifier's classes: near the global mean, far from each
    class. One Gaussian calls them typical; the nearest-cluster score does not."""
    rng = np.random.default_rng(2)
    centres = np.eye(8)[:4] * 6.0
    reference = np.concatenate([centre + rng.normal(size=(60, 8)) for centre in centres])
    inside = np.concatenate([centre + rng.normal(size=(20, 8)) for centre in centres])
    between = reference.mean(axis=0) + rng.normal(size=(40, 8))
    model = fit_mahalanobis(reference)
    assert len(model.centres) > 1
    assert auroc(model.score(inside), model.score(between)) > 0.95
    single = (np.linalg.norm(x - reference.mean(0), axis=1) for x in (inside, between))
    assert auroc(*single) < 0.5  # the global-mean distance ranks them as more typical


def test_auroc_matches_the_pairwise_count() -> None:
    rng = np.random.default_rng(1)
    inside, outside = rng.normal(size=40), rng.normal(0.7, 1.0, size=30)
    pairs = (outside[:, None] > inside[None, :]).mean() + 0.5 * (
        outside[:, None] == inside[None, :]
    ).mean()
    assert auroc(inside, outside) == pytest.approx(pairs)


# ---- on the digits model ------------------------------------------------------------------------


def test_seed_slerp_strips_are_smoother_than_lerp(digits_pipeline, digits_classifier) -> None:
    """Without guidance the sampler sees the noise as drawn: lerp's shrunken midpoints hold the
    first seed's image too long and then jump, slerp paces the change evenly."""
    settings = GenerationSettings(steps=10, guidance_scale=1.0)
    ratios: dict[str, list[float]] = {"slerp": [], "lerp": []}
    for pair in ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)):
        for method in ratios:
            strip = explore.seed_strip(
                digits_pipeline, settings, make_prompt(7, "red"), pair, 9, method
            )
            ratios[method].append(smoothness(_features(digits_classifier, strip))["max_mean_ratio"])
    assert np.mean(ratios["slerp"]) < np.mean(ratios["lerp"]), ratios


def _levels_apart(first: np.ndarray, second: np.ndarray) -> int:
    return int(np.abs(first.astype(np.int16) - second.astype(np.int16)).max())


def test_seed_strip_ends_are_the_seeds_own_images_and_equal_seeds_stand_still(
    digits_pipeline, digits_classifier
) -> None:
    """The digits model samples with Euler, whose initial noise is scaled by init_noise_sigma:
    the strip must hand the pipeline the unscaled draw for its ends to be the seeds' images."""
    from diffusionscope.core.generation import generate

    settings = GenerationSettings(steps=3, guidance_scale=3.0)
    prompt = make_prompt(2, "blue")
    strip = explore.seed_strip(digits_pipeline, settings, prompt, (5, 6), 3, "slerp")
    own = [generate(digits_pipeline, [seed], settings, [prompt])[0] for seed in (5, 6)]
    assert _levels_apart(strip[0], own[0]) == 0 and _levels_apart(strip[-1], own[1]) == 0
    assert _levels_apart(own[0], own[1]) > 50  # another seed differs by tens of levels
    still = explore.seed_strip(digits_pipeline, settings, prompt, (5, 5), 3, "slerp")
    assert all(_levels_apart(frame, own[0]) == 0 for frame in still)
    assert smoothness(_features(digits_classifier, still))["max_mean_ratio"] == pytest.approx(1.0)


def test_prompt_strip_ends_are_the_prompts_own_images(digits_pipeline) -> None:
    from diffusionscope.core.generation import generate

    settings = GenerationSettings(steps=3, guidance_scale=3.0)
    prompts = (make_prompt(2, "blue"), make_prompt(7, "red"))
    strip = explore.prompt_strip(digits_pipeline, settings, prompts, 4, 3)
    own = [generate(digits_pipeline, [4], settings, [p])[0] for p in prompts]
    assert _levels_apart(strip[0], own[0]) == 0 and _levels_apart(strip[-1], own[1]) == 0
    assert _levels_apart(strip[1], own[0]) > 0 and _levels_apart(strip[1], own[1]) > 0


def test_inversion_reconstructs_the_digits_ten_times_better_than_fresh_noise(
    digits_pipeline, digits_classifier
) -> None:
    """DDIM inversion (the digits model predicts noise) then DDIM regeneration, against the
    same regeneration from fresh noise with the same prompts: pixel MSE at least 10x lower
    (measured: 71x at 20 steps on 40 images, see benchmarks/latent_figures.py)."""
    samples = random_samples(12, seed=21)
    images = np.stack([s.image for s in samples])
    prompts = [s.prompt for s in samples]
    clean = explore.encode_images(digits_pipeline, images)
    noise = explore.invert(digits_pipeline, clean, prompts, 20)
    # Inverted to t≈951, not back to the clean latents (DDIM-inverted latents of a model this
    # small keep image structure and a std near 0.46, so no N(0, I) check here).
    assert torch.isfinite(noise).all() and (noise - clean).abs().mean() > 0.1
    rebuilt = explore.regenerate(digits_pipeline, noise, prompts, 20, (32, 32))
    fresh = explore.regenerate(digits_pipeline, torch.randn_like(noise), prompts, 20, (32, 32))
    error = [float(np.mean((x.astype(float) - images) ** 2)) for x in (rebuilt, fresh)]
    assert error[1] >= 10 * error[0], error
    labels = digits_classifier.classify(torch.from_numpy(rebuilt).permute(0, 3, 1, 2)).numpy()
    assert np.mean(labels == np.array([s.digit for s in samples])) >= 0.9


DIRECTION_PROMPTS = [make_prompt(d, c) for d, c in ((7, "red"), (2, "blue"), (4, "green"))]
STRENGTHS = [0.0, 0.5, 1.0, 1.5, 2.0]


def _direction_rows(pipeline, pair: tuple[str, str]) -> list[tuple[float, float]]:
    """(Spearman of the directions task's attribute, Spearman of the ink fraction) per row, on
    the default CLI case (three prompts, strengths 0..2, seed 0) at 10 steps."""
    from scipy.stats import spearmanr

    settings = GenerationSettings(steps=10, guidance_scale=5.0)
    grid = explore.direction_sweep(pipeline, settings, pair, DIRECTION_PROMPTS, STRENGTHS, 0)
    positive, negative = explore.contrast_images(pipeline, settings, pair, DIRECTION_PROMPTS, 0)
    rows = []
    for row, high, low in zip(grid, positive, negative, strict=True):
        values = explore.attribute(pipeline, row, high, low)
        assert values is not None
        ink = [ink_fraction(image) for image in row]
        rows.append((spearmanr(STRENGTHS, values).statistic, spearmanr(STRENGTHS, ink).statistic))
    return rows


def test_direction_attribute_agrees_with_the_ink_fraction(digits_pipeline) -> None:
    """The thick|thin sweep thickens every row (ink pixels 356->447, 366->480, 349->514;
    Spearman 1.0, 0.9, 1.0): the directions task's attribute must say so too (it gives 1.0,
    0.9, 1.0; the old feature axis between the bare words' images gave -0.7, 0.9, -0.7).
    Reversed, thin|thick thins every row (Spearman -1.0 each) and the attribute, now measured
    toward "thin", rises (1.0 each): it follows the word, not the strength."""
    thicker = _direction_rows(digits_pipeline, ("thick", "thin"))
    assert all(ink >= 0.8 for _, ink in thicker), thicker  # the measurement the task must match
    assert all(rho >= 0.8 for rho, _ in thicker), thicker
    thinner = _direction_rows(digits_pipeline, ("thin", "thick"))
    assert all(ink <= -0.8 for _, ink in thinner), thinner
    assert all(rho >= 0.8 for rho, _ in thinner), thinner


def test_ood_auroc_on_noise_and_on_letters(digits_pipeline, digits_classifier) -> None:
    # 400: the scores are fitted on three quarters, 300 images (the rest sets the threshold)
    reference = np.stack([s.image for s in random_samples(400, seed=31)])
    inside = np.stack([s.image for s in random_samples(100, seed=32)])
    noise = np.random.default_rng(0).integers(0, 256, size=(60, 32, 32, 3), dtype=np.uint8)
    shapes = letters_and_shapes(60)
    mahalanobis = fit_mahalanobis(_features(digits_classifier, reference))
    latent = fit_mahalanobis(explore.encode_images(digits_pipeline, reference).numpy())
    scores = {}
    for name, images in (("in", inside), ("noise", noise), ("shapes", shapes)):
        scores[name] = (
            mahalanobis.score(_features(digits_classifier, images)),
            latent.score(explore.encode_images(digits_pipeline, images).numpy()),
        )
    assert auroc(scores["in"][0], scores["noise"][0]) >= 0.95
    assert auroc(scores["in"][0], scores["shapes"][0]) >= 0.95
    assert auroc(scores["in"][1], scores["noise"][1]) >= 0.95
    assert auroc(scores["in"][1], scores["shapes"][1]) >= 0.95
    assert mahalanobis.threshold > np.median(mahalanobis.scores)


def test_held_out_in_distribution_images_are_flagged_near_five_percent(
    digits_pipeline, digits_classifier
) -> None:
    """Thresholds calibrated on the held-out quarter of a 1000-image reference flag a new
    in-distribution image with probability p = (m + 1 - k) / (m + 1) = 4.8% (m = 250). The
    observed share over n = 1000 new images varies with the calibration draw (a Beta with
    variance ~ p(1-p)/(m+2)) and the test draw (binomial, p(1-p)/n): sigma = 1.5 points, so
    the share must lie within 3 sigma, [0.3%, 9.3%]. The reference's own 95th percentile
    flagged 9.2% (features) and 15.7% (latents) of these same images."""
    from diffusionscope.core.images import find_images, load_images

    reference, _ = load_images(find_images(DIGITS_REFERENCE), size=32)  # the shipped 1000
    new = np.stack([s.image for s in random_samples(1000, seed=12345)])
    spaces = {
        "features": lambda x: _features(digits_classifier, x),
        "latents": lambda x: explore.encode_images(digits_pipeline, x, 250).numpy(),
    }
    for name, embed in spaces.items():
        model = fit_mahalanobis(embed(reference))
        p, m, n = model.expected_flag_rate, len(model.scores), len(new)
        assert m == 250 and model.fitted == 750 and p == pytest.approx(12 / 251)
        sigma = np.sqrt(p * (1 - p) * (1 / n + 1 / (m + 2)))
        flagged = float(np.mean(model.score(embed(new)) > model.threshold))
        assert abs(flagged - p) <= 3 * sigma, (name, flagged, p, sigma)


# ---- CLI and bad inputs -------------------------------------------------------------------------


def test_cli_writes_strips_and_results(tmp_path: Path) -> None:
    ood_in, ood_out = tmp_path / "in", tmp_path / "out"
    ood_in.mkdir()
    ood_out.mkdir()
    for index, sample in enumerate(random_samples(20, seed=41)):
        Image.fromarray(sample.image).save(ood_in / f"{index}.png")
    for index, image in enumerate(letters_and_shapes(20)):
        Image.fromarray(image).save(ood_out / f"{index}.png")
    (ood_out / "broken.png").write_bytes(b"not an image")
    pngs = sorted(DIGITS_REFERENCE.glob("*.png"))
    code = main(
        [
            "run",
            "--modes",
            "latent",
            "--runs-root",
            str(tmp_path / "runs"),
            "--quiet",
            "--steps",
            "4",
            "--frames",
            "3",
            "--strengths",
            "0,2",
            "--images",
            f"{pngs[0]},{pngs[1]}",
            "--latent-tasks",
            "all",
            "--ood-in",
            str(ood_in),
            "--ood-out",
            str(ood_out),
            "--ood-score",
            str(ood_out),
        ]
    )
    assert code == 0
    run_dir = next((tmp_path / "runs").iterdir())
    results = json.loads((run_dir / "results.json").read_text())["latent"]
    assert results["tasks"] == ["seeds", "prompts", "images", "directions", "ood"]
    assert results["features"] == "digits"
    for strip in (results["seeds"]["slerp"], results["seeds"]["lerp"], results["prompts"]):
        assert strip["max_mean_ratio"] >= 1.0 and len(strip["steps"]) == 2
    ddim = results["images"]["ddim"]
    assert 0 <= ddim["reconstruction_mse"] <= 1 and ddim["label_agreement"] in (0.0, 0.5, 1.0)
    assert len(results["directions"]["rows"]) == 3
    ood = results["ood"]
    assert ood["n_reference"] >= MIN_REFERENCE
    assert ood["mahalanobis"]["p50"] <= ood["mahalanobis"]["threshold"]
    assert set(ood["auroc"]) == {"latent_mahalanobis", "mahalanobis", "n_in", "n_out"}
    assert ood["auroc"]["n_out"] == 20 and ood["scored"] == 20
    csv_lines = (run_dir / "artifacts" / "ood_scores.csv").read_text().splitlines()
    assert len(csv_lines) == 21 and csv_lines[0].startswith("file,latent_mahalanobis,mahalanobis")
    for name in (
        "latent_seeds_slerp.png",
        "latent_seeds_lerp.png",
        "latent_prompts.png",
        "latent_images_vae_slerp.png",
        "latent_images_vae_lerp.png",
        "latent_images_ddim.png",
        "latent_images_reconstruction.png",
        "latent_directions.png",
        "latent_directions.csv",
    ):
        assert (run_dir / "artifacts" / name).stat().st_size > 0
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert any("failed to decode" in e.get("message", "") for e in events)
    metrics = {e["name"] for e in events if e["type"] == "metric"}
    assert {"seeds_slerp_max_mean_ratio", "inversion_mse", "auroc_mahalanobis"} <= metrics
    artifacts = {Path(e["path"]).name for e in events if e["type"] == "artifact"}
    assert "latent_seeds_slerp.png" in artifacts
    report = (run_dir / "report.md").read_text()
    assert "artifacts/latent_seeds_slerp.png" in report and "AUROC" in report


def test_too_few_reference_images(tmp_path: Path, capsys) -> None:
    few = tmp_path / "few"
    few.mkdir()
    for path_ in sorted(DIGITS_REFERENCE.glob("*.png"))[:20]:
        shutil.copy(path_, few)
    code = main(
        [
            "run",
            "--modes",
            "latent",
            "--latent-tasks",
            "ood",
            "--reference",
            str(few),
            "--runs-root",
            str(tmp_path / "runs"),
            "--quiet",
        ]
    )
    assert code == 2
    assert f"20 images; OOD statistics need at least {MIN_REFERENCE}" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--latent-tasks", "wander"], "unknown task 'wander'"),
        (["--seeds", "1"], "expected two seeds"),
        (["--seeds", "1,x"], "expected a whole number, got 'x'"),
        (["--images", "a.png"], "expected two files"),
        (["--images", "a.png,b.png"], "no such file"),
        (["--frames", "1"], "at least 2"),
        (["--direction", "thick"], "POSITIVE|NEGATIVE"),
        (["--strengths", "1"], "at least two strengths"),
        (["--ood-in", "x"], "needs both"),
        (["--latent-tasks", "ood", "--reference", "/no/such/dir"], "no such folder"),
    ],
)
def test_bad_inputs(tmp_path: Path, capsys, options: list[str], expected: str) -> None:
    code = main(["run", "--modes", "latent", "--runs-root", str(tmp_path), "--quiet", *options])
    assert code == 2 and expected in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_image_that_fails_to_decode_is_refused_up_front(tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG but not really")
    good = sorted(DIGITS_REFERENCE.glob("*.png"))[0]
    runs = tmp_path / "runs"
    code = main(
        [
            "run",
            "--modes",
            "latent",
            "--runs-root",
            str(runs),
            "--quiet",
            "--images",
            f"{good},{broken}",
        ]
    )
    assert code == 2 and "cannot be decoded" in capsys.readouterr().err
    assert not runs.exists() or not list(runs.iterdir())


def test_pipeline_without_vae_is_refused() -> None:
    class NoVae:
        vae = None

    with pytest.raises(InputError, match="has no VAE"):
        explore.encode_images(NoVae(), np.zeros((1, 32, 32, 3), np.uint8))
    with pytest.raises(InputError, match="has no VAE"):
        explore.decode_latents(NoVae(), torch.zeros(1, 4, 8, 8))


def test_mode_feature_extractor_matches_the_classifier(digits_classifier) -> None:
    images = np.stack([s.image for s in random_samples(3, seed=1)])
    features, _ = extract(get_extractor("digits"), images)
    assert np.allclose(features, _features(digits_classifier, images), atol=1e-5)


def test_conditioning_interpolates_embeddings_and_keeps_masks_whole() -> None:
    from diffusionscope.core.pipeline_parts import Conditioning

    def conditioning(value: float, mask: list[int]) -> Conditioning:
        return Conditioning(
            {
                "prompt_embeds": torch.full((1, 4, 2), value),
                "pooled_prompt_embeds": torch.full((1, 3), 2 * value),
                "prompt_attention_mask": torch.tensor([mask]),
                "negative_prompt_embeds": torch.full((1, 4, 2), -value),
            }
        )

    a, b = conditioning(1.0, [1, 1, 0, 0]), conditioning(3.0, [1, 1, 1, 0])
    for t, own in ((0.0, a), (1.0, b)):  # the ends are each prompt's own, masks included
        ends = a.lerp(b, t).tensors
        assert all(torch.equal(ends[k], own.tensors[k]) for k in own.tensors)
    middle = a.lerp(b, 0.25).tensors
    assert torch.allclose(middle["prompt_embeds"], torch.full((1, 4, 2), 1.5))
    assert torch.allclose(middle["negative_prompt_embeds"], torch.full((1, 4, 2), -1.5))
    assert middle["prompt_attention_mask"].tolist() == [[1, 1, 1, 0]]  # either prompt's tokens
    delta = b.difference(a)
    assert set(delta) == {"prompt_embeds", "pooled_prompt_embeds"}  # not masks, not negatives
    assert a.shifted(delta, 0.0) is a
    moved = a.shifted(delta, 2.0, masks=b).tensors
    assert torch.allclose(moved["prompt_embeds"], torch.full((1, 4, 2), 5.0))
    assert torch.allclose(moved["pooled_prompt_embeds"], torch.full((1, 3), 10.0))
    assert torch.equal(moved["negative_prompt_embeds"], a.tensors["negative_prompt_embeds"])
    assert moved["prompt_attention_mask"].tolist() == [[1, 1, 1, 0]]


@pytest.mark.parametrize(
    ("prompt", "with_thick", "without"),
    [
        (
            "a red seven on a white background",
            "a thick red seven on a white background",
            "a red seven on a white background",
        ),
        ("An old {} cat", "An old thick cat", "An old cat"),
        ("photo of a cat", "thick photo of a cat", "photo of a cat"),
    ],
)
def test_attribute_word_goes_where_the_prompt_says(prompt, with_thick, without) -> None:
    assert explore.with_word(prompt, "thick") == with_thick
    assert explore.without_word(prompt) == without
