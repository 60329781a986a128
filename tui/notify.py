"""Telling the user a run ended, wherever they are looking: toast, bell, desktop notification.

The desktop notification is an escape sequence the terminal turns into a system notification:
OSC 9 (iTerm2, WezTerm, kitty, Windows Terminal, foot) and OSC 777 ``notify`` (urxvt,
VTE-based terminals such as GNOME Terminal, kitty, WezTerm). Terminals that know neither ignore
both. Inside tmux the sequences are wrapped in tmux's DCS passthrough, which tmux forwards to the
outer terminal when ``allow-passthrough`` is on (and drops silently otherwise). Over SSH the
escapes travel with the rest of the screen, so the notification appears on the user's desktop.
"""

from __future__ import annotations

import os

from ..core.text import one_line

BELL = "\a"
#: Long bodies are cut: notification centres show a line or two.
MAX_BODY = 200


def _field(text: str, limit: int) -> str:
    """One line of plain text that cannot end the escape early or split OSC 777's fields."""
    cleaned = one_line(text).replace(";", ",")
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def desktop_escapes(title: str, body: str) -> str:
    """OSC 9 and OSC 777 notifications for ``title``/``body``, terminated with BEL."""
    title, body = _field(title, 80), _field(body, MAX_BODY)
    return f"\x1b]9;{title}: {body}\a\x1b]777;notify;{title};{body}\a"


def tmux_passthrough(sequence: str) -> str:
    """Wrap ``sequence`` for tmux's DCS passthrough (every ESC inside doubled)."""
    return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"


def terminal_notification(title: str, body: str, *, in_tmux: bool | None = None) -> str:
    """Everything written to the terminal for one notification: the bell, then the escapes."""
    escapes = desktop_escapes(title, body)
    if in_tmux is None:
        in_tmux = bool(os.environ.get("TMUX"))
    if in_tmux:
        escapes = tmux_passthrough(escapes)
    return BELL + escapes
