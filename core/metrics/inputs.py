"""What the metrics mode's inputs reveal before the run directory exists.

Each check reads only what is cheap -- a folder listing, a model's ``config.json``, the first
files of an image folder, a statistics file -- so that a run that would fail after sampling for
an hour fails now, in one line:

* an image folder (``--reference``, ``--generated``) with fewer than two readable images;
* reference statistics that are not finite, not symmetric, not positive semi-definite, or of
  another dimension than the features the run will extract;
* Inception weights neither given, nor cached, nor downloadable (``HF_HUB_OFFLINE`` set);
* a feature or CLIP model whose only weights are pickles, without ``--allow-pickle``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..images import find_images, read_image
from ..runs import read_json

MIN_IMAGES = 2
#: Eigenvalues of a covariance below ``-PSD_TOLERANCE * largest`` are not rounding: a
#: float32-saved 2048-d covariance of rank < 2048 has zero eigenvalues off by ~1e-6 of it.
PSD_TOLERANCE = 1e-4
SYMMETRY_TOLERANCE = 1e-6
#: Where torch-fidelity's loader (``torch.hub.load_state_dict_from_url``) keeps the weights.
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = (
    f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"
)
#: The weight files transformers reads, safe first; pickles only with ``--allow-pickle``.
SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def require_readable_images(folder: str | Path, what: str) -> list[Path]:
    """The image files of ``folder``, after decoding files until two are readable (a folder of
    0-byte, non-image or damaged files is refused before anything is written)."""
    paths = find_images(folder, what=what)
    readable = 0
    for path in paths:  # stops after a few files unless nearly all are broken
        readable += read_image(path) is not None
        if readable >= MIN_IMAGES:
            return paths
    raise InputError(
        f"{what} {Path(folder).expanduser()}: only {readable} readable image(s) among "
        f"{len(paths)} files; need at least {MIN_IMAGES}"
    )


def check_statistics(path: Path, mu: np.ndarray, sigma: np.ndarray) -> None:
    """``mu`` and ``sigma`` are a mean and a covariance: finite, symmetric and positive
    semi-definite. Anything else gives a FID of NaN, infinity or a number without meaning."""
    where = f"reference {path}"
    for name, array in (("mu", mu), ("sigma", sigma)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise InputError(f"{where}: {name} holds {bad} NaN or infinite value(s)")
    scale = float(np.max(np.abs(sigma))) if sigma.size else 0.0
    asymmetry = float(np.max(np.abs(sigma - sigma.T))) if sigma.size else 0.0
    if asymmetry > SYMMETRY_TOLERANCE * max(scale, 1e-300):
        raise InputError(
            f"{where}: sigma is not symmetric (differs from its transpose by up to "
            f"{asymmetry:.3g}), so it is not a covariance"
        )
    eigenvalues = np.linalg.eigvalsh(sigma) if sigma.size else np.zeros(1)
    largest = float(np.max(np.abs(eigenvalues)))
    if float(eigenvalues[0]) < -PSD_TOLERANCE * max(largest, 1e-300):
        raise InputError(
            f"{where}: sigma is not positive semi-definite (smallest eigenvalue "
            f"{eigenvalues[0]:.3g}, largest {eigenvalues[-1]:.3g}), so it is not a covariance"
        )


def feature_dim(features: str, model: str | None) -> int | None:
    """The width of the features ``features`` will extract, from configs alone (None when the
    config is not at hand: the run checks again once the extractor is loaded)."""
    from ..zoo import DIGITS_FEATURES
    from .features import DEFAULT_CLIP, DEFAULT_DINOV2

    if features == "inception":
        return 2048
    if features == "digits":
        config: dict[str, Any] | None = _json(DIGITS_FEATURES / "config.json")
        return int(config["num_features"]) if config else None
    default = DEFAULT_DINOV2 if features == "dinov2" else DEFAULT_CLIP
    config = _model_config(model or default)
    if config is None:
        return None
    key = "hidden_size" if features == "dinov2" else "projection_dim"
    value = config.get(key)
    return int(value) if isinstance(value, int) else None


def check_inception_available(weights: str | None) -> None:
    """Inception-v3 weights for ``--features inception``: given, cached by an earlier download,
    or downloadable. With ``HF_HUB_OFFLINE`` set nothing is downloaded: say what to pass."""
    if weights is not None:
        from .features import check_weights_file

        check_weights_file(weights)
        return
    import torch.hub

    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    if cached.is_file():
        return
    from ..loading import hub_offline

    what_to_pass = (
        "pass --inception-weights pt_inception-2015-12-05.pth (pytorch-fid's file), or "
        "--features digits|dinov2|clip"
    )
    if hub_offline():
        raise InputError(
            f"--features inception: the Inception-v3 weights are not in {cached.parent} and "
            f"HF_HUB_OFFLINE is set, so they are not downloaded; {what_to_pass}"
        )
    problem = _unreachable(INCEPTION_URL)
    if problem:
        raise InputError(
            f"--features inception: the Inception-v3 weights are not in {cached.parent} and "
            f"cannot be downloaded ({problem}); {what_to_pass}"
        )


def _unreachable(url: str) -> str | None:
    """Why ``url`` cannot be fetched now (one HEAD request), or None when it can."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=15):
            return None
    except (urllib.error.URLError, OSError, ValueError) as error:
        return str(getattr(error, "reason", error))[:120]


def check_model_weights(model: str, what: str, allow_pickle: bool) -> None:
    """A transformers model folder (or cached hub model) whose only weights are pickled is
    refused without ``--allow-pickle``: transformers would unpickle ``pytorch_model.bin``."""
    folder = _model_folder(model)
    if folder is None:
        return
    present = {name for name in (*SAFE_WEIGHTS, *PICKLED_WEIGHTS) if (folder / name).is_file()}
    if present & set(SAFE_WEIGHTS) or allow_pickle:
        return
    if present:
        raise InputError(
            f"{what} {model}: only pickled weights ({sorted(present)[0]}), which can run code "
            "when loaded; convert to model.safetensors, or pass --allow-pickle if you trust them"
        )
    if Path(model).expanduser().is_dir():
        raise InputError(f"{what} {model}: no model.safetensors (nor any weights) in the folder")


def _model_folder(model: str) -> Path | None:
    """A local folder, or the cached snapshot folder of a hub id (None when neither)."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    from ..loading import cached_hub_file

    config = cached_hub_file(model, "config.json")
    return config.parent if config is not None else None


def _model_config(model: str) -> dict[str, Any] | None:
    folder = _model_folder(model)
    return _json(folder / "config.json") if folder is not None else None


def _json(path: Path) -> dict[str, Any] | None:
    """A JSON object, or None where the file is missing, unreadable or holds something else."""
    data = read_json(path)
    return data if isinstance(data, dict) else None
