"""core.families: what a pipeline is, read from its configs alone (no weights are opened)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from family_pipelines import FAMILIES, FAMILY_INFO

from diffusionscope.core.errors import InputError
from diffusionscope.core.families import read_model_configs

EXPECTED_FAMILY = {
    "sd15": "sd",
    "sd21v": "sd",
    "sdxl": "sdxl",
    "lcm": "lcm",
    "sd3": "sd3",
    "sd35m": "sd3",
    "pixart_alpha": "pixart",
    "pixart_sigma": "pixart",
    "flux_dev": "flux",
    "flux_schnell": "flux",
    "sana": "sana",
}


@pytest.mark.parametrize("name", FAMILIES)
def test_family_read_from_configs(name: str, family_dir, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = family_dir(name)

    def no_weights(*_args, **_kwargs):
        raise AssertionError("weights were opened")

    monkeypatch.setattr("safetensors.safe_open", no_weights)
    described = read_model_configs(str(folder))
    assert described.family == EXPECTED_FAMILY[name]
    assert described.pipeline_class == FAMILY_INFO[name].pipeline
    assert described.scheduler_class == FAMILY_INFO[name].scheduler
    assert described.denoiser == (
        "unet" if name in ("sd15", "sd21v", "sdxl", "lcm") else "transformer"
    )
    assert described.denoiser_config == json.loads(
        (folder / described.denoiser / "config.json").read_text()
    )


def test_broken_model_index_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text("{not json")
    with pytest.raises(InputError, match="model index .*not valid JSON"):
        read_model_configs(str(tmp_path))


@pytest.mark.parametrize("name", FAMILIES)
def test_default_size_and_vae_factor_match_the_pipeline(name: str, family_dir) -> None:
    """The sizes the configs imply are the ones the pipeline really uses (checked against the
    loaded pipeline and the image ``pipe(prompt)`` makes, recorded in FAMILY_INFO)."""
    from diffusers import DiffusionPipeline

    folder = family_dir(name)
    described = read_model_configs(str(folder))
    assert described.default_image_size() == (FAMILY_INFO[name].height, FAMILY_INFO[name].width)
    pipeline = DiffusionPipeline.from_pretrained(folder)
    assert described.vae_scale_factor == pipeline.vae_scale_factor
    assert described.text_conditioned == any(
        key.startswith("text_encoder") and value is not None
        for key, value in pipeline.components.items()
    )


def test_unknown_pipeline_has_no_default_size(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text(
        json.dumps({"_class_name": "SomeVideoPipeline", "transformer": ["diffusers", "X"]})
    )
    described = read_model_configs(str(tmp_path))
    assert described.family == "other" and described.default_image_size() is None
    assert described.vae_scale_factor == 8 and not described.text_conditioned
