"""The workbench's model summary from configs and safetensors headers (no torch), checked
against what loading the pipeline says, for every family; and the form's torch-free checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from family_pipelines import FAMILIES

from diffusionscope.core.errors import InputError
from diffusionscope.core.model_info import inspect_model, run_device, weight_files
from diffusionscope.core.options import Option
from diffusionscope.tui.start_checks import error_field, is_model_error, quick_check

REPO = Path(__file__).resolve().parent.parent
DIGITS = REPO / "core" / "zoo" / "digits-ldm"


def test_the_shipped_model_without_torch() -> None:
    code = (
        "import json, sys\nfrom diffusionscope.core.model_info import inspect_model\n"
        f"info = inspect_model({str(DIGITS)!r})\n"
        "print(json.dumps({'lines': info.lines(), 'torch': 'torch' in sys.modules}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert not report["torch"]
    assert report["lines"][0] == "StableDiffusionPipeline (sd)"
    assert "  1.71M unet UNet2DConditionModel" in report["lines"]


@pytest.mark.parametrize("family", FAMILIES)
def test_the_summary_matches_the_loaded_pipeline(family: str, family_dir) -> None:
    """Classes, scheduler, resolution and text encoders as the loader reports them; parameter
    counts equal to the modules' own, but for buffers saved with the weights (SD3)."""
    from diffusionscope.core.loading import load_pipeline

    folder = family_dir(family)
    loaded = load_pipeline(str(folder), "cpu", "fp32").summary
    info = inspect_model(str(folder), "cpu", "fp32")
    assert info.pipeline_class.split(" ")[0] == loaded.pipeline_class
    assert info.scheduler_class == loaded.scheduler_class
    assert info.native_resolution == loaded.native_resolution
    assert info.text_encoders == loaded.text_encoders
    for name, component in loaded.components.items():
        if name == "scheduler":
            continue
        described = info.components[name]
        assert described.class_name == component["class"]
        counted, loaded_count = described.parameters or 0, component.get("parameters") or 0
        if name == "transformer" and family.startswith("sd3"):
            assert counted > loaded_count  # + the stored positional-embedding table
        else:
            assert counted == loaded_count, name
    assert (info.device, info.dtype) == ("cpu", "fp32")


def test_weight_files_prefer_the_plain_ones(tmp_path: Path) -> None:
    for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"):
        (tmp_path / name).write_bytes(b"")
    assert [f.name for f in weight_files(tmp_path)] == ["diffusion_pytorch_model.safetensors"]
    (tmp_path / "diffusion_pytorch_model.safetensors").unlink()
    assert [f.name for f in weight_files(tmp_path)] == ["diffusion_pytorch_model.fp16.safetensors"]
    shards = tmp_path / "te"
    shards.mkdir()
    for shard in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"):
        (shards / shard).write_bytes(b"")
    assert len(weight_files(shards)) == 2


def test_corrupt_headers_and_other_sources_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(InputError, match="corrupt safetensors"):
        inspect_model(str(bad))
    scheduler = inspect_model(str(DIGITS / "scheduler" / "scheduler_config.json"))
    assert scheduler.scheduler_class == "EulerDiscreteScheduler"
    assert "schedule mode only" in scheduler.lines()[-1]
    pickle = tmp_path / "model.ckpt"
    pickle.write_bytes(b"x")
    assert "--allow-pickle" in inspect_model(str(pickle)).lines()[-1]
    with pytest.raises(InputError, match="no such"):
        inspect_model(str(tmp_path / "missing"))


def test_the_run_device_is_guessed_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    import diffusionscope.core.health as health

    monkeypatch.setattr(health, "gpu_count", lambda nvml=None: 2)
    assert run_device("auto", "auto") == ("cuda (auto)", "fp16 (auto)")
    assert run_device("cpu", "auto") == ("cpu", "fp32 (auto)")
    monkeypatch.setattr(health, "gpu_count", lambda nvml=None: 0)
    assert run_device("auto", "bf16")[1] == "bf16"


def test_quick_checks_refuse_what_is_wrong_on_its_face() -> None:
    quick_check(["--modes", "schedule", "--model", str(DIGITS)])
    with pytest.raises(InputError, match="--modes: unknown mode 'bogus'"):
        quick_check(["--modes", "bogus"])
    with pytest.raises(InputError, match="--steps: must be positive"):
        quick_check(["--modes", "metrics", "--steps", "0"])
    with pytest.raises(InputError, match="no such folder"):
        quick_check(["--modes", "schedule", "--model", "./nowhere"])


def test_refusals_find_their_field() -> None:
    specs = [Option("reference", "r"), Option("prompts_file", "p"), Option("num_samples", "n")]
    assert error_field("reference folder /x: no such folder", specs) == "reference"
    assert error_field("prompts file p.txt: not UTF-8 text", specs) == "prompts_file"
    assert error_field("num samples: too many", specs) == "num_samples"
    assert error_field("something else: no", specs) is None
    assert is_model_error("model 'x': folder has no model_index.json")
    assert is_model_error("weights unet/x.safetensors: truncated")
    assert not is_model_error("reference folder x: no such folder")
