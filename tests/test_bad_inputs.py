"""Every bad input: one line on stderr, exit code 2, no traceback, nothing written.

The table runs in-process through ``diffusionscope.core.cli.main`` (fast); a few rows also run
through ``python -m diffusionscope`` to prove the same end to end. "Nothing written" is checked
on the whole workspace -- runs root, inputs and the saved runs ``--resume`` is pointed at --
by comparing every path's size and modification time before and after.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from family_pipelines import FAMILIES
from PIL import Image
from safetensors.torch import load_file, save_file

from diffusionscope.core.cli import build_parser, config_from_args, main, validate_run_args
from diffusionscope.core.errors import InputError
from diffusionscope.core.runs import RunWriter
from diffusionscope.core.zoo import DIGITS_REFERENCE

REPO = Path(__file__).resolve().parent.parent


def valid_config(**changes: object) -> dict:
    """The configuration a ``run --modes schedule`` run saves, with ``changes`` applied."""
    args = build_parser().parse_args(["run", "--modes", "schedule"])
    validate_run_args(args)
    return {**config_from_args(args), **changes}


def saved_run(root: Path, name: str, config: object, *, finished: bool = False) -> Path:
    """A run directory as a killed (or finished) run leaves it, holding ``config``."""
    writer = RunWriter.create(root, name, {})
    writer.start()
    writer.status("running")
    if finished:
        writer.write_results({"schedule": {}})
        writer.status("finished")
    writer.close()
    text = config if isinstance(config, str) else json.dumps(config)
    (writer.path / "config.json").write_text(text)
    return writer.path


def _write_safetensors(path: Path) -> bytes:
    save_file({"weight": torch.ones(64), "bias": torch.zeros(8)}, str(path))
    return path.read_bytes()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_pipeline_dir: Path) -> Path:
    """Every bad input the table names, built once; the table only reads it."""
    ws = tmp_path_factory.mktemp("bad-inputs")
    (ws / "runs").mkdir()
    (ws / "afile").write_text("not a folder\n")
    (ws / "plain-folder").mkdir()
    (ws / "notes.txt").write_text("hello\n")
    (ws / "model.ckpt").write_bytes(b"\x80\x04pickle")
    (ws / "latin1.txt").write_bytes("a red seven\ncafé\n".encode("latin-1"))
    (ws / "binary.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (ws / "nul.txt").write_bytes(b"a red seven\x00\n")
    (ws / "broken.npz").write_bytes(b"PK\x03\x04 not really a zip")
    np.savez(ws / "no-stats.npz", features=np.zeros((4, 2)))
    np.savez(ws / "stats-3d.npz", mu=np.zeros(3), sigma=np.eye(3))
    clean = json.dumps({"extractor": "inception", "resize": "clean"})
    np.savez(ws / "stats-clean.npz", mu=np.zeros(4), sigma=np.eye(4), protocol=np.asarray(clean))
    (ws / "coco").mkdir()
    (ws / "coco" / "captions.json").write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "gone.png"}],
                "annotations": [{"image_id": 1, "caption": "a red seven"}],
            }
        )
    )
    (ws / "columns.csv").write_text("image,text\ndigit.png,a red seven\n")
    (ws / "scheduler_config.json").write_text(
        (tiny_pipeline_dir / "scheduler" / "scheduler_config.json").read_text()
    )
    (ws / "broken_scheduler.json").write_text("{not json")
    (ws / "prompts.txt").write_text("a red seven on a white background\n")
    (ws / "tiny-sd").symlink_to(tiny_pipeline_dir, target_is_directory=True)
    (ws / "bad-index").mkdir()
    (ws / "bad-index" / "model_index.json").write_text("{oops")
    (ws / "empty.safetensors").write_bytes(b"")
    good = _write_safetensors(ws / "good.safetensors")
    (ws / "garbage.safetensors").write_bytes(len(b"not json!").to_bytes(8, "little") + b"not json!")
    (ws / "truncated.safetensors").write_bytes(good[:-100])
    (ws / "padded.safetensors").write_bytes(good + b"\0" * 16)
    (ws / "short.safetensors").write_bytes(good[:5])
    truncated_unet = shutil.copytree(tiny_pipeline_dir, ws / "truncated-unet")
    weights = truncated_unet / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])

    _model_variants(ws, tiny_pipeline_dir)
    _feature_inputs(ws)

    saved = ws / "runs"
    saved_run(saved, "not-json", "{this is not json")
    saved_run(saved, "list", [])
    saved_run(saved, "config-empty", {})
    saved_run(saved, "modes-text", valid_config(modes="schedule"))
    saved_run(saved, "modes-bogus", valid_config(modes=["bogus"]))
    saved_run(saved, "modes-empty", valid_config(modes=[]))
    no_model = valid_config()
    del no_model["model"]
    saved_run(saved, "no-model", no_model)
    saved_run(saved, "seed-text", valid_config(seed="zero"))
    saved_run(saved, "steps-negative", valid_config(steps=-4))
    saved_run(saved, "guidance-nan", json.dumps(valid_config(guidance_scale=float("nan"))))
    saved_run(saved, "pickle-text", valid_config(allow_pickle="yes"))
    saved_run(saved, "model-number", valid_config(model=5))
    saved_run(saved, "model-gone", valid_config(model=str(ws / "deleted-model")))
    saved_run(saved, "interrupted", valid_config())
    saved_run(saved, "finished", valid_config(), finished=True)
    return ws


def _edit_json(path: Path, **changes: object) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def _model_variants(ws: Path, tiny: Path) -> None:
    """Copies of the tiny pipeline, each wrong in one way its configs or file listing show."""

    def variant(name: str) -> Path:
        return shutil.copytree(tiny, ws / name)

    _edit_json(variant("custom-class") / "model_index.json", _class_name="MyCustomPipeline")
    _edit_json(variant("custom-module") / "model_index.json", unet=["my_module", "MyUNet"])
    shutil.rmtree(variant("no-unet") / "unet")
    _edit_json(variant("huge-sample") / "unet" / "config.json", sample_size=1e9)
    pickled = variant("bin-only")
    for weights in pickled.glob("*/*.safetensors"):
        stem = "pytorch_model" if weights.stem == "model" else weights.stem
        torch.save(load_file(weights), weights.with_name(f"{stem}.bin"))
        weights.unlink()
    # PixArt-alpha as its configs describe it: what the checks read, with placeholder weights.
    pixart = ws / "pixart-alpha"
    pixart.mkdir()
    (pixart / "model_index.json").write_text(json.dumps(PIXART_INDEX))
    for name, config in PIXART_CONFIGS.items():
        (pixart / name).mkdir()
        (pixart / name / CONFIG_FILES.get(name, "config.json")).write_text(json.dumps(config))
        if name in ("transformer", "vae", "text_encoder"):
            _write_safetensors(pixart / name / "model.safetensors")


PIXART_INDEX = {
    "_class_name": "PixArtAlphaPipeline",
    "scheduler": ["diffusers", "DPMSolverMultistepScheduler"],
    "text_encoder": ["transformers", "T5EncoderModel"],
    "tokenizer": ["transformers", "T5Tokenizer"],
    "transformer": ["diffusers", "PixArtTransformer2DModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}
PIXART_CONFIGS: dict[str, dict] = {
    "scheduler": {"_class_name": "DPMSolverMultistepScheduler", "num_train_timesteps": 1000},
    "transformer": {"sample_size": 32, "patch_size": 2, "in_channels": 4},
    "vae": {"block_out_channels": [32, 32, 32, 32]},
    "text_encoder": {"d_model": 32},
    "tokenizer": {},
}
CONFIG_FILES = {"scheduler": "scheduler_config.json", "tokenizer": "tokenizer_config.json"}


def _feature_inputs(ws: Path) -> None:
    """Statistics files, image folders and feature models, each wrong in one way."""
    dim = 64  # the digits extractor's
    np.savez(ws / "dim7.npz", mu=np.zeros(7), sigma=np.eye(7))
    nan_sigma = np.eye(dim)
    nan_sigma[0, 0] = np.nan
    np.savez(ws / "nan.npz", mu=np.zeros(dim), sigma=nan_sigma)
    np.savez(ws / "inf.npz", mu=np.full(dim, np.inf), sigma=np.eye(dim))
    skew = np.eye(dim)
    skew[0, 1] = 0.5
    np.savez(ws / "skew.npz", mu=np.zeros(dim), sigma=skew)
    np.savez(ws / "negative.npz", mu=np.zeros(dim), sigma=-np.eye(dim))
    unreadable = ws / "unreadable-images"
    unreadable.mkdir()
    (unreadable / "empty.png").write_bytes(b"")
    (unreadable / "text.png").write_text("not an image\n")
    Image.new("RGB", (1, 1)).save(unreadable / "one-pixel.png")
    pickled_clip = ws / "pickled-clip"
    pickled_clip.mkdir()
    (pickled_clip / "config.json").write_text(json.dumps({"projection_dim": 8}))
    torch.save({"weight": torch.ones(2)}, pickled_clip / "pytorch_model.bin")


def _run_dir(ws: Path, name: str) -> str:
    [path] = (ws / "runs").glob(f"*-{name}")
    return str(path)


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    expected: str

    def arguments(self, ws: Path) -> list[str]:
        return [
            _run_dir(ws, arg[len("RUN:") :]) if arg.startswith("RUN:") else arg.format(ws=ws)
            for arg in self.argv
        ]


def case(id: str, *argv: str, expected: str) -> Case:
    return Case(id, argv, expected)


SCHEDULE = ("run", "--modes", "schedule")
ATTENTION = ("run", "--modes", "attention", "--prompt", "a red seven")
METRICS = ("run", "--modes", "metrics")
GENERATED_DIGITS = (*METRICS, "--features", "digits", "--generated", str(DIGITS_REFERENCE))

CASES = [
    # ---- run: options -----------------------------------------------------------------------
    case("run-without-modes", "run", expected="--modes"),  # core/options.py's row
    case("unknown-mode", "run", "--modes", "bogus", expected="unknown mode 'bogus'"),
    case("empty-modes", "run", "--modes", "", expected="name at least one"),
    case("mode-twice", "run", "--modes", "schedule,schedule", expected="named twice"),
    case("unknown-option", *SCHEDULE, "--frobnicate", expected="unrecognized arguments"),
    case("num-samples-zero", *SCHEDULE, "--num-samples", "0", expected="--num-samples"),
    case("steps-negative", *SCHEDULE, "--steps", "-3", expected="must be positive"),
    case("steps-text", *SCHEDULE, "--steps", "abc", expected="--steps"),
    case("seed-text", *SCHEDULE, "--seed", "x", expected="--seed"),
    case("device-unknown", *SCHEDULE, "--device", "tpu", expected="--device: expected one of"),
    case("dtype-unknown", *SCHEDULE, "--dtype", "fp8", expected="--dtype: choose one of"),
    case("guidance-nan", *SCHEDULE, "--guidance-scale", "nan", expected="--guidance-scale"),
    case("sampler-steps-zero", *SCHEDULE, "--sampler-steps", "0", expected="--sampler-steps"),
    case("spacing-unknown", *SCHEDULE, "--timestep-spacing", "x", expected="--timestep-spacing"),
    case("empty-prompt", "run", "--modes", "attention", "--prompt", " ", expected="empty prompt"),
    case("seeds-three", "run", "--modes", "latent", "--seeds", "1,2,3", expected="--seeds"),
    case("metric-unknown", *METRICS, "--metrics", "bogus", expected="unknown metric 'bogus'"),
    case("reference-missing", *METRICS, "--reference", "{ws}/nope", expected="no such folder"),
    # ---- run: the model ---------------------------------------------------------------------
    case("model-missing-folder", *SCHEDULE, "--model", "/no/such/folder", expected="no such"),
    case("model-missing-file", *SCHEDULE, "--model", "{ws}/x.ckpt", expected="no such file"),
    case("model-pickle", *SCHEDULE, "--model", "{ws}/model.ckpt", expected="--allow-pickle"),
    case("model-text-file", *SCHEDULE, "--model", "{ws}/notes.txt", expected="unsupported file"),
    case(
        "model-plain-folder",
        *SCHEDULE,
        "--model",
        "{ws}/plain-folder",
        expected="no model_index.json",
    ),
    case(
        "model-index-not-json", *ATTENTION, "--model", "{ws}/bad-index", expected="not valid JSON"
    ),
    case(
        "model-scheduler-only",
        *ATTENTION,
        "--model",
        "{ws}/scheduler_config.json",
        expected="only for the schedule mode",
    ),
    case(
        "scheduler-not-json",
        *SCHEDULE,
        "--model",
        "{ws}/broken_scheduler.json",
        expected="not valid JSON",
    ),
    case(
        "hub-model-not-cached",
        *ATTENTION,
        "--model",
        "nobody/not-cached",
        expected="not in the local Hugging Face cache",
    ),
    case("weights-empty", *ATTENTION, "--model", "{ws}/empty.safetensors", expected="empty file"),
    case("weights-short", *ATTENTION, "--model", "{ws}/short.safetensors", expected="truncated"),
    case(
        "weights-header-not-json",
        *ATTENTION,
        "--model",
        "{ws}/garbage.safetensors",
        expected="header (not JSON)",
    ),
    case(
        "weights-truncated",
        *ATTENTION,
        "--model",
        "{ws}/truncated.safetensors",
        expected="bytes of",
    ),
    case(
        "weights-padded",
        *ATTENTION,
        "--model",
        "{ws}/padded.safetensors",
        expected="16 bytes past the last tensor",
    ),
    case(
        "folder-truncated-unet",
        *ATTENTION,
        "--model",
        "{ws}/truncated-unet",
        expected="diffusion_pytorch_model.safetensors: truncated",
    ),
    case(
        "default-clip-not-cached",
        *METRICS,
        "--model",
        "{ws}/tiny-sd",
        "--features",
        "digits",
        "--reference",
        str(DIGITS_REFERENCE),
        "--prompts-file",
        "{ws}/prompts.txt",
        "-n",
        "4",
        expected="openai/clip-vit-large-patch14",
    ),
    # ---- run: what the model's configs and files say, before the run directory ---------------
    case(
        "size-off-the-step",
        *ATTENTION,
        "--model",
        "{ws}/tiny-sd",
        "--height",
        "36",
        "--width",
        "7",
        expected="--height 36: StableDiffusionPipeline needs a multiple of 8 px",
    ),
    case(
        "size-off-the-step-latent",
        "run",
        "--modes",
        "latent",
        "--model",
        "{ws}/tiny-sd",
        "--prompt",
        "a red seven",
        "--width",
        "60",
        expected="--width 60: StableDiffusionPipeline needs a multiple of 8 px",
    ),
    case(
        "pipeline-class-unknown",
        *ATTENTION,
        "--model",
        "{ws}/custom-class",
        expected="pipeline class 'MyCustomPipeline' is not a diffusers pipeline",
    ),
    case(
        "component-custom-module",
        *METRICS,
        "--model",
        "{ws}/custom-module",
        "--features",
        "digits",
        "--reference",
        str(DIGITS_REFERENCE),
        "--prompts-file",
        "{ws}/prompts.txt",
        "--metrics",
        "fid",
        expected="component unet is my_module.MyUNet, custom code",
    ),
    case("component-missing", *ATTENTION, "--model", "{ws}/no-unet", expected="no unet/ folder"),
    case(
        "weights-pickled-only",
        *ATTENTION,
        "--model",
        "{ws}/bin-only",
        expected="has only pickled weights",
    ),
    case(
        "sample-size-1e9",
        *ATTENTION,
        "--model",
        "{ws}/huge-sample",
        expected="sample_size 1000000000.0 is not a positive whole number",
    ),
    case(
        "pixart-alpha-one-step",
        *ATTENTION,
        "--model",
        "{ws}/pixart-alpha",
        "--steps",
        "1",
        expected="--steps 1: PixArtAlphaPipeline's one-step path",
    ),
    case(
        "single-file-config-with-a-folder",
        *ATTENTION,
        "--model",
        "{ws}/tiny-sd",
        "--single-file-config",
        "/nonexistent",
        expected="only for a single-file --model",
    ),
    case(
        "single-file-config-missing",
        *ATTENTION,
        "--model",
        "{ws}/good.safetensors",
        "--single-file-config",
        "/nonexistent",
        expected="--single-file-config /nonexistent: not a diffusers folder",
    ),
    # ---- run: upper bounds -------------------------------------------------------------------
    case(
        "num-samples-huge",
        *SCHEDULE,
        "-n",
        "99999999999999999999999",
        expected="--num-samples: at most",
    ),
    case("steps-huge", *ATTENTION, "--steps", "1000000000", expected="--steps: at most"),
    case("height-huge", *ATTENTION, "--height", "100000", expected="--height: at most"),
    case("metrics-empty-list", *METRICS, "--metrics", "", expected="--metrics: name at least one"),
    case(
        "prompts-endless",
        *METRICS,
        "--prompts-file",
        "/dev/zero",
        expected="--prompts-file /dev/zero: larger than",
    ),
    # ---- run: metrics inputs -------------------------------------------------------------------
    case(
        "reference-npz-wrong-dimension",
        *GENERATED_DIGITS,
        "--reference",
        "{ws}/dim7.npz",
        expected="statistics are 7-d but the feature extractor gives 64-d",
    ),
    case(
        "reference-npz-nan",
        *GENERATED_DIGITS,
        "--reference",
        "{ws}/nan.npz",
        expected="sigma holds 1 NaN or infinite value(s)",
    ),
    case(
        "reference-npz-not-symmetric",
        *GENERATED_DIGITS,
        "--reference",
        "{ws}/skew.npz",
        expected="sigma is not symmetric",
    ),
    case(
        "reference-npz-negative-definite",
        *GENERATED_DIGITS,
        "--reference",
        "{ws}/negative.npz",
        expected="sigma is not positive semi-definite",
    ),
    case(
        "generated-unreadable",
        *METRICS,
        "--features",
        "digits",
        "--generated",
        "{ws}/unreadable-images",
        "--reference",
        str(DIGITS_REFERENCE),
        expected="only 1 readable image(s) among 3 files; need at least 2",
    ),
    case(
        "inception-offline-not-cached",
        *METRICS,
        "--generated",
        str(DIGITS_REFERENCE),
        "--reference",
        str(DIGITS_REFERENCE),
        expected="HF_HUB_OFFLINE is set, so they are not downloaded; pass --inception-weights",
    ),
    case(
        "feature-model-pickled",
        *GENERATED_DIGITS,
        "--features",
        "clip",
        "--feature-model",
        "{ws}/pickled-clip",
        "--reference",
        str(DIGITS_REFERENCE),
        expected="--features clip {ws}/pickled-clip: only pickled weights (pytorch_model.bin)",
    ),
    case(
        "dinov2-model-pickled",
        *GENERATED_DIGITS,
        "--features",
        "dinov2",
        "--feature-model",
        "{ws}/pickled-clip",
        "--reference",
        str(DIGITS_REFERENCE),
        expected="only pickled weights",
    ),
    case(
        "clip-model-pickled",
        *METRICS,
        "--model",
        "{ws}/tiny-sd",
        "--features",
        "digits",
        "--reference",
        str(DIGITS_REFERENCE),
        "--prompts-file",
        "{ws}/prompts.txt",
        "--metrics",
        "clip",
        "--clip-model",
        "{ws}/pickled-clip",
        expected="--clip-model {ws}/pickled-clip: only pickled weights",
    ),
    # ---- run: input files and the runs root --------------------------------------------------
    case(
        "prompts-latin1",
        *METRICS,
        "--prompts-file",
        "{ws}/latin1.txt",
        expected="not UTF-8 text (byte 0xe9 at offset 15, line 2)",
    ),
    case(
        "prompts-binary",
        *METRICS,
        "--prompts-file",
        "{ws}/binary.bin",
        expected="not UTF-8 text (byte 0x89 at offset 0, line 1)",
    ),
    case("prompts-nul", *METRICS, "--prompts-file", "{ws}/nul.txt", expected="NUL byte"),
    case("prompts-missing", *METRICS, "--prompts-file", "{ws}/none.txt", expected="no such file"),
    case("prompts-folder", *METRICS, "--prompts-file", "{ws}", expected="is a folder"),
    case("runs-root-file", *SCHEDULE, "--runs-root", "{ws}/afile", expected="is a file"),
    case("runs-root-under-file", *SCHEDULE, "--runs-root", "{ws}/afile/runs", expected="is a file"),
    # ---- run --resume ----------------------------------------------------------------------
    case("resume-missing", "run", "--resume", "{ws}/nope", expected="no such run directory"),
    case(
        "resume-not-a-run", "run", "--resume", "{ws}/plain-folder", expected="not a run directory"
    ),
    case("resume-config-not-json", "run", "--resume", "RUN:not-json", expected="not a JSON object"),
    case("resume-config-list", "run", "--resume", "RUN:list", expected="not a JSON object"),
    case("resume-config-empty", "run", "--resume", "RUN:config-empty", expected="lacks 'modes'"),
    case(
        "resume-modes-text", "run", "--resume", "RUN:modes-text", expected="'modes' must be a list"
    ),
    case(
        "resume-modes-bogus", "run", "--resume", "RUN:modes-bogus", expected="unknown mode 'bogus'"
    ),
    case(
        "resume-modes-empty",
        "run",
        "--resume",
        "RUN:modes-empty",
        expected="'modes' must be a list",
    ),
    case("resume-no-model", "run", "--resume", "RUN:no-model", expected="lacks 'model'"),
    case("resume-seed-text", "run", "--resume", "RUN:seed-text", expected="'seed' is 'zero'"),
    case(
        "resume-steps-negative",
        "run",
        "--resume",
        "RUN:steps-negative",
        expected="must be positive",
    ),
    case(
        "resume-guidance-nan", "run", "--resume", "RUN:guidance-nan", expected="not a finite number"
    ),
    case("resume-flag-text", "run", "--resume", "RUN:pickle-text", expected="not true or false"),
    case("resume-model-number", "run", "--resume", "RUN:model-number", expected="not text"),
    case("resume-model-gone", "run", "--resume", "RUN:model-gone", expected="no such"),
    case("resume-finished", "run", "--resume", "RUN:finished", expected="already finished"),
    case(
        "resume-with-seed",
        "run",
        "--resume",
        "RUN:interrupted",
        "--seed",
        "0",
        expected="--seed cannot be given with --resume",
    ),
    case(
        "resume-with-modes",
        "run",
        "--resume",
        "RUN:interrupted",
        "--modes",
        "schedule",
        expected="--modes cannot be given",
    ),
    case(
        "resume-with-n-and-steps",
        "run",
        "--resume",
        "RUN:interrupted",
        "-n",
        "5",
        "--steps",
        "2",
        expected="--num-samples, --steps cannot be given",
    ),
    case(
        "resume-with-runs-root",
        "run",
        "--resume",
        "RUN:interrupted",
        "--runs-root",
        "{ws}",
        expected="--runs-root cannot be given",
    ),
    # ---- runs, show, fid, the command itself ------------------------------------------------
    case("runs-root-is-file", "runs", "--runs-root", "{ws}/afile", expected="is a file"),
    case("runs-root-missing", "runs", "--runs-root", "/nonexistent", expected="no such folder"),
    case("runs-extra-argument", "runs", "extra", expected="unrecognized arguments: extra"),
    case("runs-unknown-option", "runs", "--bogus", expected="unrecognized arguments"),
    case("show-missing", "show", "{ws}/nope", expected="no such run directory"),
    case("show-file", "show", "{ws}/afile", expected="not a folder"),
    case("show-not-a-run", "show", "{ws}/plain-folder", expected="not a run directory"),
    case("show-config-not-json", "show", "RUN:not-json", expected="not a run directory"),
    case("show-no-argument", "show", expected="required: run_dir"),
    case("fid-no-arguments", "fid", expected="required"),
    case("fid-missing", "fid", "{ws}/nope", "{ws}/nope2", expected="no such folder"),
    case("fid-file", "fid", "{ws}/afile", "{ws}/afile", expected="not a folder"),
    case("fid-no-images", "fid", "{ws}/plain-folder", "{ws}/plain-folder", expected="no images"),
    case(
        "fid-broken-npz",
        "fid",
        "{ws}/broken.npz",
        "{ws}/broken.npz",
        expected="not a readable .npz",
    ),
    case(
        "fid-batch-zero",
        "fid",
        "{ws}/nope",
        "{ws}/nope",
        "--batch-size",
        "0",
        expected="--batch-size",
    ),
    # ---- protocols: caption sets, statistics files, the reference crop -----------------------
    case(
        "caption-image-missing",
        *METRICS,
        "--reference-set",
        "{ws}/coco/captions.json",
        "-n",
        "1",
        expected="image 'gone.png' not found under",
    ),
    case(
        "caption-unknown-column",
        *METRICS,
        "--reference-set",
        "{ws}/columns.csv",
        "-n",
        "1",
        expected="unknown column(s) 'text'",
    ),
    case(
        "caption-set-and-prompts",
        *METRICS,
        "--reference-set",
        "{ws}/columns.csv",
        "--prompts-file",
        "{ws}/prompts.txt",
        expected="the drawn captions are the prompts",
    ),
    case(
        "npz-other-dimension",
        *METRICS,
        "--reference",
        "{ws}/stats-3d.npz",
        expected="statistics are 3-d but the feature extractor gives 64-d",
    ),
    case(
        "npz-other-resize",
        *METRICS,
        "--generated",
        str(DIGITS_REFERENCE),
        "--features",
        "inception",
        "--reference",
        "{ws}/stats-clean.npz",
        expected="statistics made with --resize clean; this run uses --resize tf",
    ),
    case(
        "fid-npz-other-resize",
        "fid",
        str(DIGITS_REFERENCE),
        "{ws}/stats-clean.npz",
        expected="made with --resize clean",
    ),
    case(
        "crop-above-image-size",
        *METRICS,
        "--reference-size",
        "64",
        expected="is 32x32, smaller than the crop",
    ),
    case(
        "stats-crop-above-image-size",
        "stats",
        str(DIGITS_REFERENCE),
        "-o",
        "{ws}/out.npz",
        "--features",
        "digits",
        "--reference-size",
        "64",
        expected="smaller than the crop",
    ),
    case("stats-no-output", "stats", str(DIGITS_REFERENCE), expected="-o OUT.npz is required"),
    case(
        "resize-clean-not-inception",
        *METRICS,
        "--resize",
        "clean",
        "--features",
        "digits",
        expected="--resize clean: applies to the inception extractor",
    ),
    case("resize-unknown", *METRICS, "--resize", "lanczos", expected="--resize: choose one of"),
    case("fid-npz-nan", "fid", "{ws}/nan.npz", "{ws}/nan.npz", expected="NaN or infinite"),
    case("fid-npz-inf", "fid", "{ws}/inf.npz", "{ws}/inf.npz", expected="mu holds 64 NaN"),
    case("fid-npz-skew", "fid", "{ws}/skew.npz", "{ws}/skew.npz", expected="not symmetric"),
    case(
        "fid-npz-negative",
        "fid",
        "{ws}/negative.npz",
        "{ws}/negative.npz",
        expected="not positive semi-definite",
    ),
    case("unknown-command", "frobnicate", expected="invalid choice: 'frobnicate'"),
    # ---- user strings are shown literally ---------------------------------------------------
    case(
        "escapes-in-path",
        *METRICS,
        "--prompts-file",
        "{ws}/x\x1b]0;owned\x07\x1b[2J.txt",
        expected="x.txt: no such file",
    ),
    case(
        "newline-in-path",
        *METRICS,
        "--prompts-file",
        "{ws}/two\nlines.txt",
        expected="two lines.txt: no such file",
    ),
]

# Rows that pass only with work outside this area: "default-clip-not-cached" needs the metrics
# mode's check_model hook to check its CLIP model with loading.check_hub_files; "fid-broken-npz"
# needs the reference loader to report a damaged zip (core/metrics/reference.py).


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture
def isolated(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs go to the workspace's runs root by default, and the working folder is in it too;
    the Hugging Face cache is an empty one, whatever this machine has cached."""
    import huggingface_hub.constants

    monkeypatch.setenv("DIFFUSIONSCOPE_RUNS", str(workspace / "runs"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    empty_cache = workspace / "plain-folder"
    monkeypatch.setenv("HF_HUB_CACHE", str(empty_cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(empty_cache))
    monkeypatch.setenv("TORCH_HOME", str(empty_cache))  # no cached Inception weights either
    monkeypatch.chdir(workspace / "plain-folder")
    return workspace


def test_the_table_is_big_enough() -> None:
    commands = {c.argv[0] for c in CASES}
    assert len(CASES) >= 40 and {"run", "runs", "show", "fid"} <= commands
    assert sum("--resume" in c.argv for c in CASES) >= 10
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_nothing_written(
    isolated: Path, capsys: pytest.CaptureFixture[str], bad: Case
) -> None:
    before = _snapshot(isolated)
    code = main(bad.arguments(isolated))
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("diffusionscope: error: "), lines[0]
    assert bad.expected.format(ws=isolated) in lines[0]
    assert "Traceback" not in captured.err
    assert "\x1b" not in captured.err and "\x07" not in captured.err
    assert captured.out == ""
    assert _snapshot(isolated) == before, "a bad input wrote something"


END_TO_END = [
    "unknown-mode",
    "prompts-latin1",
    "resume-config-empty",
    "runs-root-is-file",
    "show-file",
    "weights-truncated",
]


@pytest.mark.parametrize("name", END_TO_END)
def test_bad_input_end_to_end(isolated: Path, name: str) -> None:
    """The console entry point: the same one line and exit code, from a process of its own."""
    [bad] = [c for c in CASES if c.id == name]
    before = _snapshot(isolated)
    result = subprocess.run(
        [sys.executable, "-m", "diffusionscope", *bad.arguments(isolated)],
        capture_output=True,
        text=True,
        cwd=isolated / "plain-folder",
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("diffusionscope: error: ") and bad.expected in line
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert _snapshot(isolated) == before


def test_read_only_runs_root(tmp_path: Path) -> None:
    """A runs root on a read-only file system: one line, exit 2, nothing written.

    Permissions stop an ordinary user (a folder chmod 0o555) but not root, who writes there
    anyway; a read-only file system stops everyone. As root the test mounts a read-only tmpfs
    in a mount namespace of the command's own (``unshare``), where the kernel itself answers
    EROFS; without ``unshare`` it is skipped.
    """
    root = tmp_path / "ro"
    root.mkdir()
    command = [
        sys.executable,
        "-m",
        "diffusionscope",
        "run",
        "--modes",
        "schedule",
        "--runs-root",
        str(root / "runs"),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    if os.geteuid() != 0:
        root.chmod(0o555)
        expected = "permission denied"
    else:
        unshare = shutil.which("unshare")
        if unshare is None:
            pytest.skip("running as root without unshare: no read-only file system to test on")
        mount = f'mount -t tmpfs -o ro tmpfs {root} && exec "$@"'
        command = [unshare, "--mount", "--map-root-user", "sh", "-c", mount, "sh", *command]
        expected = "read-only file system"
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
        )
    finally:
        root.chmod(0o755)
    if os.geteuid() == 0 and "mount" in result.stderr and "diffusionscope" not in result.stderr:
        pytest.skip(f"cannot mount a read-only tmpfs here: {result.stderr.strip()}")
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("diffusionscope: error: --runs-root ") and expected in line
    assert list(root.iterdir()) == []


# --------------------------------------------------------------------------------------------
# Failures inside a run, and what a run writes
# --------------------------------------------------------------------------------------------


def test_a_failed_run_prints_one_line_and_keeps_its_traceback_in_the_log(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug inside a mode: exit 1, a line that points at the log, and no bare "Traceback"
    line on stderr (the traceback is in events.jsonl, at debug level)."""
    import diffusionscope.core.schedule as schedule

    def broken(ctx: object) -> None:
        raise RuntimeError("an internal fault")

    monkeypatch.setattr(schedule, "run", broken)
    code = main(["run", "--modes", "schedule", "--runs-root", str(runs_root)])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    assert "run failed: RuntimeError: an internal fault" in err
    [run_dir] = runs_root.iterdir()
    logged = (run_dir / "events.jsonl").read_text()
    assert "Traceback (most recent call last)" in logged and '"level": "debug"' in logged


def test_show_into_a_closed_pipe_ends_quietly(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``diffusionscope show RUN | head``: the reader goes away; no BrokenPipeError traceback,
    nothing on stderr, the exit code of a process SIGPIPE ended."""
    assert main(["run", "--modes", "schedule", "--runs-root", str(runs_root), "--quiet"]) == 0
    [run_dir] = runs_root.iterdir()
    capsys.readouterr()

    class ClosedPipe:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self) -> int:
            raise OSError("no descriptor in this test")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["show", str(run_dir)]) == 128 + 13
    assert capsys.readouterr().err == ""


def _strict_json(text: str) -> object:
    """JSON as the standard has it: Python's reader takes Infinity and NaN, this one refuses."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_numbers_json_cannot_hold_are_null_with_a_note(tmp_path: Path) -> None:
    """inf and NaN are not JSON: results.json and events.jsonl hold null and say what it was."""
    from diffusionscope.core.runs import read_events

    writer = RunWriter.create(tmp_path, "nonfinite", {})
    writer.start()
    writer.metric("fid", float("inf"), mode="metrics")
    writer.series("fid", 10, float("nan"), mode="metrics")
    writer.write_results({"metrics": {"fid": {"value": float("inf"), "n": 10}}})
    writer.close()
    results = _strict_json((writer.path / "results.json").read_text())
    assert results["metrics"]["fid"]["value"] is None
    assert results["notes"] == [
        "metrics.fid.value was inf, written as null (JSON holds no infinity or NaN)"
    ]
    events = [
        _strict_json(line) for line in (writer.path / "events.jsonl").read_text().splitlines()
    ]
    metric = next(event for event in events if event["type"] == "metric")
    assert metric["value"] is None and "value was inf" in metric["notes"][0]
    parsed = [e for e in read_events(writer.path) if e.type in ("metric", "series")]
    assert np.isnan(parsed[0].value)  # null reads back as "not a number", whatever it was
    assert np.isnan(parsed[1].y)


def test_unreadable_generated_files_are_counted_in_results_and_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files of a folder that cannot be decoded are left out, and the results say how many."""
    monkeypatch.setenv("DIFFUSIONSCOPE_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "images"
    folder.mkdir()
    for path in sorted(DIGITS_REFERENCE.glob("*.png"))[:12]:
        shutil.copy(path, folder / path.name)
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    root = tmp_path / "runs"
    argv = ["run", "--modes", "metrics", "--features", "digits", "--metrics", "fid"]
    argv += ["--generated", str(folder), "--reference", str(folder), "--bootstrap", "0"]
    assert main([*argv, "--runs-root", str(root), "--quiet"]) == 0
    [run_dir] = root.iterdir()
    metrics = json.loads((run_dir / "results.json").read_text())["metrics"]
    assert metrics["generated"]["skipped_files"] == 1 and metrics["generated"]["n"] == 12
    assert metrics["reference"]["skipped_files"] == 1
    report = (run_dir / "report.md").read_text()
    assert f"generated folder `{folder}`: 1 unreadable file(s) skipped" in report
    assert f"reference folder `{folder}`: 1 unreadable file(s) skipped" in report


FULL_DISK_SCRIPT = """
import json, os, subprocess, sys
from pathlib import Path
from diffusionscope.core.cli import main
from diffusionscope.core.runs import list_runs
root, reference, report = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
argv = ["run", "--modes", "metrics", "-n", "24", "--steps", "2", "--metrics", "fid",
        "--batch-size", "4", "--bootstrap", "0", "--save-images", "--features", "digits",
        "--reference", reference, "--runs-root", str(root / "runs"), "--quiet"]
first = main(argv)
[run] = (root / "runs").iterdir()
temp = [str(p) for p in run.rglob("*") if ".tmp" in p.name]
state = [info.state for info in list_runs(root / "runs")]
subprocess.run(["mount", "-o", "remount,size=64m", str(root)], check=True)
second = main(["run", "--resume", str(run), "--quiet"])
report.write_text(json.dumps({"first": first, "second": second, "temp": temp, "state": state,
                              "finished": (run / "results.json").is_file()}))
"""


def test_a_full_disk_interrupts_the_run_in_one_line_and_it_resumes(tmp_path: Path) -> None:
    """A runs root on a 96 KiB tmpfs (its own mount namespace; root needed, as for the
    read-only test): the run stops at the write the disk refuses, with one line naming that
    file and the free space; it is left interrupted with no temporary file, and resumes to
    the end once the file system has room. One process runs both, to import torch once."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        pytest.skip("needs root and unshare to mount a size-limited tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    reference = tmp_path / "reference"
    reference.mkdir()
    for path in sorted(DIGITS_REFERENCE.glob("*.png"))[:16]:
        shutil.copy(path, reference / path.name)
    report = tmp_path / "report.json"
    mount = f'mount -t tmpfs -o size=96k tmpfs {disk} && exec "$@"'
    command = [unshare, "--mount", "--map-root-user", "sh", "-c", mount, "sh", sys.executable]
    command += ["-c", FULL_DISK_SCRIPT, str(disk), str(reference), str(report)]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "DIFFUSIONSCOPE_CACHE": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
    }
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    if "mount" in result.stderr and not report.exists():
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()[-200:]}")
    outcome = json.loads(report.read_text())
    assert outcome["first"] == 130, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("diffusionscope:")]
    assert len(lines) == 1, result.stderr
    assert "cannot write " in lines[0] and "No space left on device" in lines[0]
    assert " free there" in lines[0] and "run --resume" in lines[0]
    assert "Traceback" not in result.stderr
    assert outcome["temp"] == [] and outcome["state"] == ["interrupted"]
    assert outcome["second"] == 0 and outcome["finished"], result.stderr


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_passes_the_checks_at_its_own_sizes_and_steps(family: str, family_dir) -> None:
    """No false refusal: each family's pipeline, at its default size, at a size of its size
    step and at 2 steps, passes; one pixel off the step is refused."""
    import argparse

    from diffusionscope.core.families import read_model_configs
    from diffusionscope.core.preflight import check_pipeline, size_step

    configs = read_model_configs(str(family_dir(family)))
    step = size_step(configs)
    for height, width, steps in ((None, None, None), (None, None, 2), (4 * step, 2 * step, 4)):
        args = argparse.Namespace(allow_pickle=False, height=height, width=width, steps=steps)
        check_pipeline(args, configs)
    off = argparse.Namespace(allow_pickle=False, height=4 * step + 1, width=None, steps=None)
    with pytest.raises(InputError, match=f"needs a multiple of {step} px"):
        check_pipeline(off, configs)
