"""Shared fixtures. Every test runs offline: models come from the repo or are built here."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# OpenMP threads that find no work sleep instead of spinning for it (libgomp's default spins):
# on a loaded machine the spinning burned several times the CPU of the work itself, so a
# test's cost depended on the load around it. Read when torch loads OpenMP, so set here, before
# any test module imports torch; child processes inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session", autouse=True)
def _limit_threads() -> None:
    import torch

    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight StableDiffusionPipeline saved as a diffusers folder (16 px images)."""
    from tiny_pipeline import build_tiny_pipeline

    return build_tiny_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd")


@pytest.fixture(scope="session")
def tiny_single_file(tiny_pipeline_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same pipeline as one original-layout (LDM) ``.safetensors`` checkpoint."""
    from tiny_pipeline import export_ldm_single_file

    target = tmp_path_factory.mktemp("single") / "tiny-sd.safetensors"
    return export_ldm_single_file(tiny_pipeline_dir, target)


@pytest.fixture
def runs_root(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    root.mkdir()
    return root


@pytest.fixture(scope="session")
def digits_pipeline():
    """The shipped demo model, loaded once through the project's own loader."""
    from diffusionscope.core.loading import load_pipeline
    from diffusionscope.core.zoo import DIGITS_LDM

    loaded = load_pipeline(str(DIGITS_LDM), "cpu", "fp32").pipeline
    loaded.set_progress_bar_config(disable=True)
    return loaded


@pytest.fixture(scope="session")
def digits_classifier():
    """The shipped digit classifier (features for FID, labels for recognisability)."""
    from diffusionscope.core.zoo.features import load_digits_features

    return load_digits_features("cpu")


@pytest.fixture(scope="session")
def family_dir(tmp_path_factory: pytest.TempPathFactory):
    """``family_dir(name)``: that family's tiny random pipeline folder, built once per session."""
    from family_pipelines import build_family

    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = build_family(name, tmp_path_factory.mktemp("families") / name)
        return built[name]

    return get


@pytest.fixture(scope="module")
def family_pipeline(family_dir):
    """``family_pipeline(name)``: that family's pipeline, loaded once for the test module."""
    from diffusers import DiffusionPipeline

    loaded: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in loaded:
            pipeline = DiffusionPipeline.from_pretrained(family_dir(name))
            pipeline.set_progress_bar_config(disable=True)
            loaded[name] = pipeline
        return loaded[name]

    return get
