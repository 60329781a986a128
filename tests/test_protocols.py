"""The published protocols: clean-fid's resize, caption sets, statistics files out and in.

clean-fid and pytorch-fid are test dependencies (the ``test`` and ``dev`` extras): their own
code is the reference the project is checked against. One random-weight Inception file serves
every Inception test (its forward costs about a second an image on a CPU): few, small images.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image

from diffusionscope.core.cli import build_parser, main
from diffusionscope.core.images import find_images, read_image
from diffusionscope.core.zoo import DIGITS_REFERENCE

cleanfid_resize = pytest.importorskip("cleanfid.resize")
pytorch_fid = pytest.importorskip("pytorch_fid.fid_score")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIFFUSIONSCOPE_CACHE", str(tmp_path / "cache"))


def _odd_images(folder: Path) -> dict[str, Path]:
    """A square, a non-square, a 16-bit greyscale and a palette PNG."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = {name: folder / f"{name}.png" for name in ("square", "wide", "sixteen", "palette")}
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), np.uint8)).save(paths["square"])
    Image.fromarray(rng.integers(0, 256, (37, 53, 3), np.uint8)).save(paths["wide"])
    wide = rng.integers(0, 65536, (30, 45), dtype=np.uint16)
    Image.fromarray(wide).save(paths["sixteen"])  # mode I;16
    palette = Image.fromarray(rng.integers(0, 256, (33, 29, 3), np.uint8)).quantize(16)
    palette.save(paths["palette"])
    return paths


def test_clean_resize_is_clean_fids_bit_for_bit(tmp_path: Path) -> None:
    from diffusionscope.core.metrics.resize import clean_resize

    theirs = cleanfid_resize.make_resizer("PIL", False, "bicubic", (299, 299))
    paths = _odd_images(tmp_path / "odd")
    assert Image.open(paths["sixteen"]).mode.startswith("I;16")
    assert Image.open(paths["palette"]).mode == "P"
    for name, path in paths.items():
        image = read_image(path)
        ours = clean_resize(image)
        assert ours.shape == (299, 299, 3) and ours.dtype == np.float32, name
        assert np.array_equal(ours, theirs(image)), name
        assert not np.array_equal(ours, np.round(ours)), f"{name}: re-quantised"


# ---- one random-weight Inception file, fed to both sides ----------------------------------


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    with (
        mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict", lambda *a, **k: None),
        mock.patch("torch.load", return_value={}),
        torch.random.fork_rng(devices=[]),
    ):
        torch.manual_seed(0)
        net = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048"], feature_extractor_weights_path="unused"
        )
        for module in net.modules():  # He init keeps the signal alive through 90 layers
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = tmp_path_factory.mktemp("inception") / "inception-random.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def two_folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two images a side, of several sizes and kinds (each costs a forward on each side)."""
    root = tmp_path_factory.mktemp("sets")
    first, second = root / "a", root / "b"
    odd = _odd_images(root / "odd")
    first.mkdir()
    second.mkdir()
    for name, folder in (("wide", first), ("sixteen", first), ("palette", second)):
        shutil.copy(odd[name], folder)
    noise = np.random.default_rng(1).integers(0, 256, (31, 60, 3), np.uint8)
    Image.fromarray(noise).save(second / "noise.png")
    return first, second


def _fid_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def _library_features(net: torch.nn.Module, pixels: np.ndarray) -> np.ndarray:
    """torch-fidelity's own forward on float 299×299 pixels, its uint8 check switched off (its
    TF-1 resize is the identity at 299): the network exactly as the library runs it."""
    batch = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()
    with mock.patch("torchmetrics.image.fid.vassert"), torch.inference_mode():
        features, _ = net._torch_fidelity_forward(batch)
    return features.double().numpy()


def _few_sample_fid(x: np.ndarray, y: np.ndarray) -> float:
    """FID of two small sets without a 2048×2048 decomposition: with ``Σ1 = AᵀA`` and
    ``Σ2 = BᵀB`` (A, B the centred features over sqrt(n-1)), ``tr sqrt(Σ1 Σ2)`` is the sum of
    the singular values of ``A Bᵀ`` (the non-zero eigenvalues of Σ1Σ2 are those of
    ``A Bᵀ B Aᵀ``)."""
    a = (x - x.mean(0)) / np.sqrt(len(x) - 1)
    b = (y - y.mean(0)) / np.sqrt(len(y) - 1)
    cross = np.linalg.svd(a @ b.T, compute_uv=False).sum()
    mean = ((x.mean(0) - y.mean(0)) ** 2).sum()
    return float(mean + (a * a).sum() + (b * b).sum() - 2 * cross)


def test_clean_fid_equals_clean_fids_arrays_through_the_same_network(
    inception_file: Path, two_folders: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from diffusionscope.core.metrics.features import get_extractor

    first, second = two_folders
    weights = str(inception_file)
    found = _fid_json(
        capsys,
        "fid",
        str(first),
        str(second),
        "--inception-weights",
        weights,
        "--resize",
        "clean",
        "--json",
    )
    assert found["resize"] == "clean" and found["protocol"]["resize"] == "clean"

    theirs = cleanfid_resize.make_resizer("PIL", False, "bicubic", (299, 299))
    net = get_extractor("inception", inception_weights=weights).net
    sides = []
    for folder in (first, second):
        pixels = np.stack([theirs(read_image(path)) for path in find_images(folder)])
        sides.append(_library_features(net, pixels))
    expected = _few_sample_fid(*sides)
    assert expected > 1e-3  # the random network tells the two sets apart
    assert found["fid"] == pytest.approx(expected, rel=1e-6)


def test_resize_tf_hands_the_uint8_images_to_torch_fidelitys_forward(
    inception_file: Path,
) -> None:
    """``tf`` is today's path: each uint8 image, at its own size, into the library's forward
    (which resizes it); ``clean`` hands it float 299×299 pixels instead (counted, not run)."""
    from diffusionscope.core.metrics import features as module

    weights = str(inception_file)
    images = [np.full((40, 30, 3), 7, np.uint8), np.full((32, 32, 3), 9, np.uint8)]
    seen: list[torch.Tensor] = []

    def forward(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(batch)
        return torch.zeros(len(batch), 2048, 1, 1), torch.zeros(len(batch), 1008)

    tf = module.get_extractor("inception", inception_weights=weights)
    with mock.patch.object(tf.net, "_torch_fidelity_forward", forward):
        module.extract(tf, images)
    assert [(b.dtype, tuple(b.shape)) for b in seen] == [
        (torch.uint8, (1, 3, 40, 30)),
        (torch.uint8, (1, 3, 32, 32)),
    ]
    assert torch.equal(seen[0][0].permute(1, 2, 0), torch.from_numpy(images[0]))
    clean = module.get_extractor("inception", inception_weights=weights, resize="clean")
    pixels: list[torch.Tensor] = []
    with mock.patch.object(
        module,
        "inception_from_pixels",
        lambda net, x: pixels.append(x) or (torch.zeros(len(x), 2048), torch.zeros(len(x), 1008)),
    ):
        module.extract(clean, images)
    assert [tuple(x.shape) for x in pixels] == [(1, 3, 299, 299)] * 2
    assert pixels[0].dtype == torch.float32 and float(pixels[0].max()) == 7.0
    assert tf.weights_sha256 == clean.weights_sha256 and len(tf.weights_sha256) == 64
    assert (tf.resize, clean.resize) == ("tf", "clean")
    # The words are part of every cached reference's key: tf's must stay those of before.
    assert tf.resize_policy == "uint8; bilinear to 299x299, antialias=False (torch-fidelity/TF FID)"


# ---- caption sets ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_caption_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 shipped digits, some padded to non-square, with COCO captions (two per image)."""
    root = tmp_path_factory.mktemp("coco")
    images = root / "val"
    images.mkdir()
    labels = json.loads((DIGITS_REFERENCE / "labels.json").read_text())[:24]
    entries, notes = [], []
    for index, label in enumerate(labels):
        picture = np.asarray(Image.open(DIGITS_REFERENCE / label["file"]).convert("RGB"))
        if index % 2:
            picture = np.pad(picture, ((0, 0), (4, 6), (0, 0)), mode="edge")  # 32x42
        Image.fromarray(picture).save(images / label["file"])
        entries.append({"id": 100 + index, "file_name": label["file"]})
        notes.append({"image_id": 100 + index, "caption": label["prompt"]})
        notes.append({"image_id": 100 + index, "caption": f"digit {label['digit']} #{index}"})
    file = root / "captions.json"
    file.write_text(json.dumps({"images": entries, "annotations": notes}))
    return file


def _metrics_args(*argv: str):
    """The metrics mode's typed options for ``run --modes metrics ARGV``, as a run builds them."""
    from diffusionscope.core.cli import mode_options, validate_run_args

    args = build_parser().parse_args(["run", "--modes", "metrics", *argv])
    validate_run_args(args)
    return mode_options(args, "metrics")


def test_caption_draw_gives_the_prompts_and_the_cropped_reference(
    digits_caption_set: Path,
) -> None:
    from diffusionscope.core.metrics import reference_draw_size, resolve_options
    from diffusionscope.core.metrics.caption_sets import draw_from_args, read_caption_set
    from diffusionscope.core.metrics.features import extract, get_extractor
    from diffusionscope.core.metrics.reference_plan import load_planned, plan_reference

    root = digits_caption_set.parent / "val"
    common = ("--reference-set", str(digits_caption_set), "--reference-root", str(root))
    args = _metrics_args(*common, "-n", "8", "--seed", "3", "--reference-size", "24")
    options = resolve_options(args)
    drawn = draw_from_args(args, 8)
    captions = read_caption_set(digits_caption_set, root).captions
    assert options.prompts == list(drawn.captions) and len(set(drawn.images)) == 8
    for image, caption in zip(drawn.images, drawn.captions, strict=True):
        assert caption in captions[image.name]

    again = draw_from_args(_metrics_args(*common, "-n", "8", "--seed", "3"), 8)
    other = draw_from_args(_metrics_args(*common, "-n", "8", "--seed", "4"), 8)
    assert again.images == drawn.images and again.captions == drawn.captions
    assert other.images != drawn.images

    extractor = get_extractor("digits")
    plan = plan_reference(args, reference_draw_size(args, options))
    stats = load_planned(plan, extractor, 4)
    cropped = []
    for path in drawn.images:
        picture = Image.open(path).convert("RGB")
        scale = 24 / min(picture.size)
        picture = picture.resize(
            (int(picture.size[0] * scale), int(picture.size[1] * scale)), Image.Resampling.BICUBIC
        )
        left, top = round((picture.size[0] - 24) / 2), round((picture.size[1] - 24) / 2)
        cropped.append(np.asarray(picture.crop((left, top, left + 24, top + 24))))
    assert {image.shape for image in cropped} == {(24, 24, 3)}
    np.testing.assert_array_equal(stats.features, extract(extractor, cropped)[0])
    assert stats.n == 8 and stats.protocol["caption_seed"] == 3
    assert "24" in stats.protocol["reference_crop"]


def test_caption_set_run_records_the_protocol_and_the_command(
    digits_caption_set: Path, runs_root: Path
) -> None:
    """The shipped digits model sampled from drawn captions: results and report carry the
    protocol, and the report ends with the command that reproduces the run."""
    root = digits_caption_set.parent / "val"
    argv = [
        "run",
        "--modes",
        "metrics",
        "--reference-set",
        str(digits_caption_set),
        "--reference-root",
        str(root),
        "-n",
        "4",
        "--seed",
        "2",
        "--steps",
        "2",
        "--metrics",
        "fid",
        "--bootstrap",
        "0",
        "--runs-root",
        str(runs_root),
        "--quiet",
    ]
    assert main(argv) == 0
    [run_dir] = runs_root.iterdir()
    protocol = json.loads((run_dir / "results.json").read_text())["metrics"]["protocol"]
    assert protocol["caption_seed"] == 2 and protocol["reference_count"] == 4
    assert protocol["extractor"] == "digits" and len(protocol["weights_sha256"]) == 64
    lines = (run_dir / "report.md").read_text().rstrip().splitlines()
    assert lines[-1] == f"Protocol (metrics): {protocol['line']}"
    command = lines[lines.index("```") + 1]
    for word in ("--reference-set", "--num-samples 4", "--seed 2", "--steps 2"):
        assert word in command


# ---- statistics files out and in -------------------------------------------------------------


@pytest.fixture(scope="module")
def digit_folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("digits")
    paths = sorted(DIGITS_REFERENCE.glob("*.png"))
    folders = (root / "first", root / "second")
    for folder, chosen in zip(folders, (paths[:150], paths[150:300]), strict=True):
        folder.mkdir()
        for path in chosen:
            shutil.copy(path, folder)
    return folders


# The digit features have dead units, so both covariances are singular: scipy's sqrtm says so,
# and pytorch-fid's distance (which only offsets non-finite roots) still agrees to 1e-6.
@pytest.mark.filterwarnings("ignore:Matrix is singular")
def test_stats_output_is_read_by_pytorch_fid_and_by_fid(
    digit_folders: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = digit_folders
    out = tmp_path / "first.npz"
    assert main(["stats", str(first), "-o", str(out), "--features", "digits", "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["n"] == 150 and written["protocol"]["extractor"] == "digits"
    theirs = tmp_path / "second.npz"
    assert main(["stats", str(second), "-o", str(theirs), "--features", "digits"]) == 0
    capsys.readouterr()
    with np.load(out) as a, np.load(theirs) as b:
        assert a["features"].shape == (150, 64) and a["mu"].dtype == np.float64
        expected = pytorch_fid.calculate_frechet_distance(a["mu"], a["sigma"], b["mu"], b["sigma"])
    found = _fid_json(capsys, "fid", str(second), str(out), "--features", "digits", "--json")
    assert found["fid"] == pytest.approx(expected, rel=1e-6)
    assert found["fid"] == pytest.approx(
        _fid_json(capsys, "fid", str(second), str(first), "--features", "digits", "--json")["fid"],
        rel=1e-9,
    )


def test_adm_batch_gives_the_statistics_of_its_images(
    digit_folders: tuple[Path, Path], tmp_path: Path
) -> None:
    first, _ = digit_folders
    batch = tmp_path / "VIRTUAL_digits.npz"
    np.savez(batch, arr_0=np.stack([read_image(p) for p in find_images(first)]))
    outputs = []
    for source in (first, batch):
        out = tmp_path / f"{Path(source).stem}-stats.npz"
        assert main(["stats", str(source), "-o", str(out), "--features", "digits"]) == 0
        outputs.append(np.load(out))
    for key in ("mu", "sigma", "features"):
        np.testing.assert_array_equal(outputs[0][key], outputs[1][key])
    assert int(outputs[1]["n"]) == 150


# ---- the README's offline protocol example ---------------------------------------------------

README_INTRO = "Offline, with the shipped digits and their COCO-format caption set"


def test_readme_protocol_example_runs_offline_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's offline caption-set block, from the checkout's folder, with small counts
    (``test_readme.with_small_counts``) and the statistics file written under ``tmp_path``."""
    import shlex

    from test_readme import REPO, with_small_counts

    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split(README_INTRO, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [
        shlex.split(line.strip())
        for line in block.replace("\\\n", " ").splitlines()
        if line.strip().startswith("diffusionscope ")
    ]
    assert [argv[1] for argv in commands] == ["run", "stats", "fid"]
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for argv in commands:
        command = [str(tmp_path / w) if w.endswith(".npz") else w for w in argv[1:]]
        command = with_small_counts(command)
        if command[0] == "run":
            command += ["--runs-root", str(tmp_path / "runs"), "--quiet"]
        assert main(command) == 0, capsys.readouterr().err
    [run_dir] = (tmp_path / "runs").iterdir()
    protocol = json.loads((run_dir / "results.json").read_text())["metrics"]["protocol"]
    with np.load(next(tmp_path.glob("*.npz"))) as written:
        assert json.loads(str(written["protocol"]))["reference_crop"] == protocol["reference_crop"]
    assert "FID:" in capsys.readouterr().out
