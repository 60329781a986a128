"""The few things the workbench remembers between sessions: recent models, recent run
configurations and the theme."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_write_json
from ..core.runs import read_json

RECENT_LIMIT = 10


def config_dir() -> Path:
    """``$DIFFUSIONSCOPE_CONFIG``, else ``$XDG_CONFIG_HOME/diffusionscope``, else ~/.config."""
    explicit = os.environ.get("DIFFUSIONSCOPE_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "diffusionscope"


def _settings_path() -> Path:
    return config_dir() / "tui.json"


def load_settings() -> dict[str, Any]:
    data = read_json(_settings_path())
    return data if isinstance(data, dict) else {}


def save_settings(settings: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # a read-only home must never stop the workbench
        atomic_write_json(_settings_path(), settings)


def recent_models() -> list[str]:
    recent = load_settings().get("recent_models", [])
    return [str(m) for m in recent if isinstance(m, str)][:RECENT_LIMIT]


def remember_model(source: str) -> list[str]:
    """Move ``source`` to the top of the recent list and return the list."""
    settings = load_settings()
    recent = [source] + [m for m in recent_models() if m != source]
    settings["recent_models"] = recent[:RECENT_LIMIT]
    save_settings(settings)
    return settings["recent_models"]


def recent_configs() -> list[dict[str, Any]]:
    """The forms of the last runs started from the workbench, newest first."""
    recent = load_settings().get("recent_configs", [])
    return [c for c in recent if isinstance(c, dict)][:RECENT_LIMIT]


def remember_config(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Put ``config`` first among the recent configurations (once) and return them."""
    settings = load_settings()
    recent = [config] + [c for c in recent_configs() if c != config]
    settings["recent_configs"] = recent[:RECENT_LIMIT]
    save_settings(settings)
    return settings["recent_configs"]


def default_model() -> str | None:
    """The shipped digits model when this build has it, relative to the working directory
    when it lies under it (shorter to read, and what a user would type)."""
    try:
        from ..core.zoo import DIGITS_LDM
    except ImportError:
        return None
    path = Path(DIGITS_LDM).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
