"""The tiny family pipelines build, reload offline and generate reproducibly with their defaults.

Other tests lean on ``FAMILY_INFO`` instead of loading a pipeline to learn its size or scheduler,
so the pipeline is checked against it here as well.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from family_pipelines import FAMILIES, FAMILY_INFO, build_family, gemma_tokenizer, t5_tokenizer

PROMPT = "a red seven, on a white background."


def _generate(pipeline, seed: int = 0) -> np.ndarray:
    generator = torch.Generator("cpu").manual_seed(seed)
    return pipeline(PROMPT, num_inference_steps=2, output_type="np", generator=generator).images


def _prediction(scheduler) -> str:
    """The target the scheduler expects; flow-matching schedulers have no prediction_type."""
    prediction = scheduler.config.get("prediction_type", "flow")
    return "flow" if prediction.startswith("flow") else prediction


@pytest.mark.parametrize("family", FAMILIES)
def test_family_builds_reloads_and_generates(family: str, tmp_path: Path) -> None:
    from diffusers import DiffusionPipeline

    info = FAMILY_INFO[family]
    pipeline = DiffusionPipeline.from_pretrained(build_family(family, tmp_path / family))
    pipeline.set_progress_bar_config(disable=True)

    assert type(pipeline).__name__ == info.pipeline
    assert type(pipeline.scheduler).__name__ == info.scheduler
    assert _prediction(pipeline.scheduler) == info.prediction
    assert pipeline.scheduler.config.get("use_dynamic_shifting", False) == info.dynamic_shifting
    encoders = [type(module).__name__ for module in pipeline.components.values()]
    assert ("T5EncoderModel" in encoders) == info.uses_t5

    first, second = _generate(pipeline), _generate(pipeline)
    assert first.shape == (1, info.height, info.width, 3)
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("prompt", [PROMPT, "red-seven", "a cat on a mat"])
def test_t5_tokenizer_has_no_unknown_pieces(prompt: str, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    t5_tokenizer(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    ids = tokenizer(prompt).input_ids

    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    assert tokenizer.unk_token_id not in ids
    assert ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == prompt


def test_t5_tokenizer_splits_a_word_into_pieces() -> None:
    pieces = t5_tokenizer().tokenize(PROMPT)
    assert pieces[-3:] == ["▁back", "ground", "."]


def test_gemma_tokenizer_round_trips_with_bos(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    gemma_tokenizer(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    ids = tokenizer(PROMPT).input_ids

    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == PROMPT
