"""Latent mode: interpolation math, smoothness, DDIM inversion, directions and OOD on the digits
model, the CLI, and bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from core.cli import main
from core.errors import InputError
from core.generation import GenerationSettings
from core.latent import explore
from core.latent.ood import auroc, fit_latent_znorm, fit_mahalanobis
from core.latent.paths import lerp, path, slerp, smoothness
from core.loading import load_pipeline
from core.metrics.reference import extract
from core.zoo import DIGITS_LDM, DIGITS_REFERENCE
from core.zoo.features import load_digits_features
from core.zoo.prompts import COLORS, ink_fraction, make_prompt, random_samples

SETTINGS = GenerationSettings(steps=15, guidance_scale=5.0)


@pytest.fixture(scope="module")
def pipeline():
    return load_pipeline(str(DIGITS_LDM), "cpu", "fp32").pipeline


@pytest.fixture(scope="module")
def classifier():
    return load_digits_features("cpu")


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
    same = slerp(a, a.clone(), 0.3)  # ω = 0: no division by sin ω
    assert torch.isfinite(same).all() and torch.allclose(same, a)
    zero = slerp(torch.zeros(3), b, 0.5)
    assert torch.allclose(zero, lerp(torch.zeros(3), b, 0.5))
    assert len(path(a, b, 5, "slerp")) == 5


def test_smoothness_finds_a_jump() -> None:
    even = np.linspace(0, 1, 8)[:, None] * np.ones((1, 4))
    jumpy = even.copy()
    jumpy[4:] += 3.0
    assert smoothness(even)["max_mean_ratio"] == pytest.approx(1.0)
    assert smoothness(jumpy)["max_mean_ratio"] > 3.0


# ---- on the digits model ------------------------------------------------------------------------


def test_slerp_strips_are_smoother_than_lerp(pipeline, classifier) -> None:
    ratios = {"slerp": [], "lerp": []}
    for pair in ((0, 1), (2, 3), (4, 5), (6, 7)):
        for method in ratios:
            strip = explore.seed_strip(pipeline, SETTINGS, make_prompt(7, "red"), pair, 7, method,
                                       (32, 32))  # fmt: skip
            ratios[method].append(smoothness(_features(classifier, strip))["max_mean_ratio"])
    assert np.mean(ratios["slerp"]) < np.mean(ratios["lerp"]), ratios


def test_ddim_inversion_reconstructs_the_digit(pipeline, classifier) -> None:
    samples = random_samples(10, seed=21)
    images = np.stack([s.image for s in samples])
    latents = explore.encode_images(pipeline, images)
    agree = 0
    for index, sample in enumerate(samples):
        noise = explore.ddim_invert(pipeline, latents[index : index + 1], sample.prompt, 25)
        rebuilt = explore.ddim_regenerate(pipeline, [noise], sample.prompt, 25, seed=0)
        agree += int(classifier.classify(torch.from_numpy(rebuilt).permute(0, 3, 1, 2))[0]
                     == sample.digit)  # fmt: skip
    assert agree / len(samples) >= 0.6


def test_thick_thin_direction_is_monotone_for_most_prompts(pipeline) -> None:
    prompts = [make_prompt(d, c) for d, c in ((7, "red"), (2, "blue"), (4, "green"), (0, "purple"))]
    grid = explore.direction_sweep(pipeline, SETTINGS, ("thick", "thin"), prompts,
                                   [0.0, 1.0, 2.0, 3.0], seed=4)  # fmt: skip
    monotone = 0
    for row in grid:
        ink = [ink_fraction(image) for image in row]
        monotone += int(
            all(b >= a for a, b in zip(ink, ink[1:], strict=False)) and ink[-1] > ink[0]
        )
    assert monotone / len(prompts) > 0.5


def _letters(count: int) -> np.ndarray:
    """Coloured letters and shapes: things the digits model has never seen."""
    rng = np.random.default_rng(3)
    images = []
    for index in range(count):
        picture = Image.new("RGB", (32, 32), "white")
        draw = ImageDraw.Draw(picture)
        color = tuple(int(v) for v in list(COLORS.values())[index % len(COLORS)])
        if index % 2:
            draw.text((8 + rng.integers(0, 6), 6 + rng.integers(0, 6)), "ABEKMRWX"[index % 8],
                      fill=color, font_size=22)  # fmt: skip
        else:
            box = [int(v) for v in (rng.integers(2, 10), rng.integers(2, 10),
                                    rng.integers(20, 30), rng.integers(20, 30))]  # fmt: skip
            (draw.ellipse if index % 4 == 0 else draw.rectangle)(box, outline=color, width=3)
        images.append(np.asarray(picture))
    return np.stack(images)


def test_ood_auroc(pipeline, classifier) -> None:
    reference = np.stack([s.image for s in random_samples(300, seed=31)])
    inside = np.stack([s.image for s in random_samples(100, seed=32)])
    noise = np.random.default_rng(0).integers(0, 256, size=(60, 32, 32, 3), dtype=np.uint8)
    shapes = _letters(60)
    mahalanobis = fit_mahalanobis(_features(classifier, reference))
    znorm = fit_latent_znorm(explore.encode_images(pipeline, reference).numpy())
    scores = {}
    for name, images in (("in", inside), ("noise", noise), ("shapes", shapes)):
        scores[name] = (mahalanobis.score(_features(classifier, images)),
                        znorm.score(explore.encode_images(pipeline, images).numpy()))  # fmt: skip
    assert auroc(scores["in"][0], scores["noise"][0]) >= 0.95
    assert auroc(scores["in"][0], scores["shapes"][0]) >= 0.95
    assert auroc(scores["in"][1], scores["noise"][1]) >= 0.9
    assert mahalanobis.threshold > np.median(mahalanobis.scores)


# ---- CLI and bad inputs -------------------------------------------------------------------------


def test_cli_writes_strips_and_results(tmp_path: Path) -> None:
    ood_in, ood_out = tmp_path / "in", tmp_path / "out"
    ood_in.mkdir()
    ood_out.mkdir()
    for index, sample in enumerate(random_samples(20, seed=41)):
        Image.fromarray(sample.image).save(ood_in / f"{index}.png")
    for index, image in enumerate(_letters(20)):
        Image.fromarray(image).save(ood_out / f"{index}.png")
    (ood_out / "broken.png").write_bytes(b"not an image")
    pngs = sorted(DIGITS_REFERENCE.glob("*.png"))
    code = main(["run", "--modes", "latent", "--runs-root", str(tmp_path / "runs"), "--quiet",
                 "--steps", "6", "--frames", "4", "--images", f"{pngs[0]},{pngs[1]}",
                 "--ood-in", str(ood_in), "--ood-out", str(ood_out), "--ood-score", str(ood_out)])  # fmt: skip
    assert code == 0
    run_dir = next((tmp_path / "runs").iterdir())
    results = json.loads((run_dir / "results.json").read_text())["latent"]
    assert results["tasks"] == ["seeds", "prompts", "images", "directions", "ood"]
    assert results["seeds"]["slerp"]["max_mean_ratio"] >= 1.0
    assert results["images"]["ddim"]["reconstruction_mse"] >= 0
    assert set(results["ood"]["auroc"]) == {"latent_znorm", "mahalanobis"}
    assert results["ood"]["scored"] == 20
    for name in ("latent_seeds_slerp.png", "latent_seeds_lerp.png", "latent_prompts.png",
                 "latent_images_ddim.png", "latent_directions.png", "ood_scores.csv"):  # fmt: skip
        assert (run_dir / "artifacts" / name).stat().st_size > 0
    events = (run_dir / "events.jsonl").read_text()
    assert "failed to decode" in events


def test_too_few_reference_images(tmp_path: Path, capsys) -> None:
    few = tmp_path / "few"
    few.mkdir()
    for path_ in sorted(DIGITS_REFERENCE.glob("*.png"))[:20]:
        shutil.copy(path_, few)
    code = main(["run", "--modes", "latent", "--latent-tasks", "ood", "--reference", str(few),
                 "--runs-root", str(tmp_path / "runs"), "--quiet"])  # fmt: skip
    assert code == 2
    assert "need at least 100" in capsys.readouterr().err
    assert not list((tmp_path / "runs").glob("*/results.json"))


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--latent-tasks", "wander"], "unknown task 'wander'"),
        (["--seeds", "1"], "expected two seeds"),
        (["--images", "a.png"], "expected two files"),
        (["--images", "a.png,b.png"], "no such file"),
        (["--frames", "1"], "at least 2"),
        (["--direction", "thick"], "POSITIVE|NEGATIVE"),
        (["--latent-tasks", "ood", "--reference", "/no/such/dir"], "no such folder"),
    ],
)
def test_bad_inputs(tmp_path: Path, capsys, options: list[str], expected: str) -> None:
    code = main(["run", "--modes", "latent", "--runs-root", str(tmp_path), "--quiet", *options])
    assert code == 2 and expected in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_pipeline_without_vae_is_refused(pipeline) -> None:
    class NoVae:
        vae = None

    with pytest.raises(InputError, match="has no VAE"):
        explore.encode_images(NoVae(), np.zeros((1, 32, 32, 3), np.uint8))


def test_extract_shapes_match(classifier) -> None:
    images = np.stack([s.image for s in random_samples(3, seed=1)])
    from core.metrics.features import get_extractor

    features, _ = extract(get_extractor("digits"), images)
    assert features.shape == (3, classifier.num_features)
