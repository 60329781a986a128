"""diffusionscope.core.loading: every source kind loads through one function; every bad input is one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from diffusionscope.core.errors import InputError
from diffusionscope.core.loading import (
    classify_source,
    load_pipeline,
    load_scheduler_config,
    require_pipeline,
    resolve_device,
    resolve_dtype,
)


def test_local_folder_loads_with_summary(tiny_pipeline_dir: Path) -> None:
    model = load_pipeline(str(tiny_pipeline_dir), "cpu", "fp32")
    summary = model.summary
    assert summary.pipeline_class == "StableDiffusionPipeline"
    assert summary.source_kind == "folder"
    assert summary.scheduler_class == "PNDMScheduler"
    assert summary.scheduler_config["beta_schedule"] == "scaled_linear"
    assert summary.native_resolution == 16
    assert summary.text_encoders == ["text_encoder"] and summary.text_conditioned
    unet_params = sum(p.numel() for p in model.pipeline.unet.parameters())
    assert summary.components["unet"]["parameters"] == unet_params
    assert summary.dtype == "float32" and summary.device == "cpu"
    assert any("StableDiffusionPipeline" in line for line in summary.lines())


def test_single_safetensors_file_matches_folder(
    tiny_pipeline_dir: Path, tiny_single_file: Path
) -> None:
    folder = load_pipeline(str(tiny_pipeline_dir), "cpu", "fp32").pipeline
    single = load_pipeline(
        str(tiny_single_file), "cpu", "fp32", single_file_config=str(tiny_pipeline_dir)
    )
    assert single.summary.source_kind == "single_file"
    assert single.summary.pipeline_class == "StableDiffusionPipeline"
    for name in ("unet", "vae", "text_encoder"):
        expected = getattr(folder, name).state_dict()
        loaded = getattr(single.pipeline, name).state_dict()
        assert expected.keys() == loaded.keys()
        for key, tensor in expected.items():
            assert torch.equal(tensor, loaded[key].reshape(tensor.shape)), f"{name}.{key}"


def test_dtype_and_device_resolution() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("auto", "cuda") == torch.float16
    assert resolve_dtype("bf16", "cpu") == torch.bfloat16
    with pytest.raises(InputError, match="--dtype fp8"):
        resolve_dtype("fp8", "cpu")
    with pytest.raises(InputError, match="--device tpu"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device("cuda:0")


def _one_line(error: pytest.ExceptionInfo[InputError]) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    return message


def test_folder_without_model_index(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    with pytest.raises(InputError) as error:
        load_pipeline(str(tmp_path / "weights"), "cpu")
    assert "no model_index.json" in _one_line(error) and "weights" in str(error.value)


def test_unknown_hub_id_offline_says_how_to_work_offline() -> None:
    with pytest.raises(InputError) as error:
        load_pipeline("nobody-here/no-such-model-xyz", "cpu")
    message = _one_line(error)
    assert "nobody-here/no-such-model-xyz" in message
    assert "HF_HUB_OFFLINE" in message and "local" in message


def test_truncated_weights_named(tiny_pipeline_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_pipeline_dir, broken)
    weights = next((broken / "unet").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(InputError) as error:
        load_pipeline(str(broken), "cpu")
    assert "truncated" in _one_line(error) and weights.name in str(error.value)


def test_corrupt_single_file_header(tmp_path: Path) -> None:
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(InputError) as error:
        load_pipeline(str(bad), "cpu")
    assert "model.safetensors" in _one_line(error)


@pytest.mark.parametrize("suffix", [".ckpt", ".bin", ".pt"])
def test_pickle_single_files_refused_without_flag(tmp_path: Path, suffix: str) -> None:
    pickle_file = tmp_path / f"model{suffix}"
    pickle_file.write_bytes(b"not loaded")
    with pytest.raises(InputError) as error:
        load_pipeline(str(pickle_file), "cpu")
    message = _one_line(error)
    assert "--allow-pickle" in message and suffix in message


def test_folder_with_only_pickled_weights_needs_flag(
    tiny_pipeline_dir: Path, tmp_path: Path
) -> None:
    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_pipeline_dir, pickled)
    for weights in (pickled / "unet").glob("*.safetensors"):
        from safetensors.torch import load_file

        torch.save(load_file(str(weights)), weights.with_name("diffusion_pytorch_model.bin"))
        weights.unlink()
    with pytest.raises(InputError) as error:
        load_pipeline(str(pickled), "cpu")
    assert "--allow-pickle" in _one_line(error)
    model = load_pipeline(str(pickled), "cpu", allow_pickle=True)
    assert model.summary.pipeline_class == "StableDiffusionPipeline"


def test_unsupported_pipeline_for_mode(tiny_pipeline_dir: Path) -> None:
    model = load_pipeline(str(tiny_pipeline_dir), "cpu")
    require_pipeline(model, "attention", ("StableDiffusion",))
    with pytest.raises(InputError) as error:
        require_pipeline(model, "attention", ("FluxPipeline",))
    assert "StableDiffusionPipeline is not supported by the attention mode" in _one_line(error)


def test_source_classification(tiny_pipeline_dir: Path, tmp_path: Path) -> None:
    assert classify_source(str(tiny_pipeline_dir)) == "folder"
    assert classify_source("stabilityai/stable-diffusion-2-1") == "hub"
    config = tiny_pipeline_dir / "scheduler" / "scheduler_config.json"
    assert classify_source(str(config)) == "scheduler_config"
    assert load_scheduler_config(str(config))["beta_end"] == pytest.approx(0.012)
    assert load_scheduler_config(str(tiny_pipeline_dir))["beta_start"] == pytest.approx(0.00085)
    with pytest.raises(InputError, match="no such file"):
        classify_source(str(tmp_path / "missing.safetensors"))
    with pytest.raises(InputError, match="not a hub id"):
        classify_source(str(tmp_path / "missing-folder"))
