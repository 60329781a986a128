"""Text from users and runs, made safe to print: no terminal escape sequences, no control codes.

Run names, model paths, prompts and status messages are shown in terminals. A stray escape
sequence in one of them (a prompt file with ``ESC[2J``, a folder named with an OSC 52 clipboard
write) would be executed by the terminal instead of shown, so everything that reaches a
terminal passes through :func:`printable` first.
"""

from __future__ import annotations

import re

#: CSI (``ESC [ ... final``), OSC/DCS/APC/PM/SOS strings (up to BEL or ``ESC \\``), other
#: two-character escapes, then every C0/C1 control character but newline and tab.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -~]?"
    r"|\x9b[0-?]*[ -/]*[@-~]"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def printable(text: object, *, one_line: bool = False) -> str:
    """``text`` with escape sequences and control characters removed (tabs become spaces;
    with ``one_line`` newlines do too)."""
    cleaned = _ESCAPES.sub("", str(text)).replace("\t", " ")
    return " ".join(cleaned.splitlines()) if one_line else cleaned
