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
    # The family's record says what the loaded pipeline holds.
    record = described.record
    present = {key for key, value in pipeline.components.items() if value is not None}
    assert described.pipeline_class in record.pipelines and record.denoiser in present
    encoders = {key for key in present if key.startswith(("text_encoder", "tokenizer"))}
    assert encoders <= set(record.text_encoders + record.tokenizers)
    assert type(getattr(pipeline, record.denoiser)).__name__ in dict(record.attention)
    in_channels = getattr(pipeline, record.denoiser).config.in_channels
    assert record.latent_channels(in_channels) == pipeline.vae.config.latent_channels


def test_unknown_pipeline_has_no_default_size(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text(
        json.dumps({"_class_name": "SomeVideoPipeline", "transformer": ["diffusers", "X"]})
    )
    described = read_model_configs(str(tmp_path))
    assert described.family == "other" and described.default_image_size() is None
    assert described.vae_scale_factor == 8 and not described.text_conditioned


def test_a_family_is_one_record() -> None:
    """Every table the modes read is derived from the family records: the records' pipelines,
    attention kinds, single-file types and inversion refusals, and the functions they name."""
    from diffusionscope.core import pipeline_parts
    from diffusionscope.core.attention.support import CAPTURED_DENOISERS
    from diffusionscope.core.families import FAMILIES as RECORDS
    from diffusionscope.core.families import FAMILY_OF_PIPELINE
    from diffusionscope.core.loading import SINGLE_FILE_PIPELINES

    for record in RECORDS:
        assert {FAMILY_OF_PIPELINE[p] for p in record.pipelines} == {record.name}
        assert set(dict(record.attention).items()) <= set(CAPTURED_DENOISERS.items())
        assert set(record.single_file) <= set(SINGLE_FILE_PIPELINES.items())
        assert pipeline_parts.FAMILIES[record.name].family is record
        assert record.encoding in pipeline_parts.ENCODERS
        assert record.noise_dtype in pipeline_parts.NOISE_DTYPES
        assert record.bins is None or record.bins in pipeline_parts.BINS
        assert pipeline_parts.NOT_INVERTIBLE.get(record.name) == record.not_invertible
    assert len(FAMILY_OF_PIPELINE) == sum(len(r.pipelines) for r in RECORDS)


@pytest.mark.parametrize(
    ("pipeline_class", "denoiser", "patch", "multiple", "grid"),
    [
        ("StableDiffusionPipeline", "unet", None, 8, None),
        ("StableDiffusion3Pipeline", "transformer", 2, 16, (32, 24)),
        ("FluxPipeline", "transformer", 1, 16, (32, 24)),  # 2 x 2 packed latent pixels a token
        ("PixArtSigmaPipeline", "transformer", 2, None, (32, 24)),  # bins: any size
    ],
)
def test_sizes_follow_the_family_record(
    tmp_path: Path, pipeline_class: str, denoiser: str, patch, multiple, grid
) -> None:
    """Size multiples and token grids of a 512 x 384 image with an 8x VAE, per family rule."""
    (tmp_path / "model_index.json").write_text(
        json.dumps(
            {"_class_name": pipeline_class, denoiser: ["diffusers", "X"], "vae": ["diffusers", "V"]}
        )
    )
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "config.json").write_text(json.dumps({"block_out_channels": [1] * 4}))
    (tmp_path / denoiser).mkdir()
    config = {} if patch is None else {"patch_size": patch}
    (tmp_path / denoiser / "config.json").write_text(json.dumps(config))
    described = read_model_configs(str(tmp_path))
    assert described.size_multiple() == multiple
    if grid is not None:
        assert described.token_grid(512, 384) == grid
