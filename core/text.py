"""User-supplied text: read it strictly, show it literally.

Two jobs, both about strings that come from the user (paths, run names, prompts, file content):

* :func:`printable` removes terminal control sequences before the CLI prints such a string, so a
  run name or prompt holding ``ESC]0;...`` or ``ESC[2J`` cannot retitle, clear or restyle the
  user's terminal. Hand-written because the libraries at hand do not remove them: rich's
  ``strip_control_codes`` drops only five C0 characters, and its ANSI decoder turns SGR codes
  into styles rather than removing them. The grammar is ECMA-48's, which fits in one pattern.
* :func:`read_text_file` reads a UTF-8 text input and, when it is not UTF-8, says where the
  first bad byte is, so the user can find it.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import InputError

_CONTROL = re.compile(
    r"""
      \x1b\[ [0-?]* [ -/]* [@-~]?           # CSI: ESC [ parameters intermediates final
    | \x9b   [0-?]* [ -/]* [@-~]?           # CSI as one C1 byte
    | \x1b\] [^\x07\x1b\x9c]* (?:\x07|\x1b\\|\x9c)?      # OSC, ended by BEL or ST
    | \x1b[PX^_] [^\x1b\x9c]* (?:\x1b\\|\x9c)?            # DCS, SOS, PM, APC strings
    | [\x90\x98\x9d\x9e\x9f] [^\x07\x1b\x9c]* (?:\x07|\x1b\\|\x9c)?  # the same as C1 bytes
    | \x1b [ -/]* [0-~]?                    # any other escape sequence, or a lone ESC
    | [\x00-\x08\x0b-\x1f\x7f-\x9f]         # other C0 (tab and newline stay), DEL, C1
    """,
    re.VERBOSE,
)


def printable(text: object) -> str:
    """``text`` as a string without terminal escape sequences or control characters.

    Newlines and tabs are kept; carriage returns go (they would let a string overwrite the
    line it is printed on).
    """
    return _CONTROL.sub("", str(text))


def one_line(text: object) -> str:
    """:func:`printable`, with line breaks folded into single spaces (for one-line messages)."""
    return " ".join(part.strip() for part in printable(text).splitlines() if part.strip())


#: The largest text input read (prompts files): a device such as ``/dev/zero`` or a
#: mistaken multi-gigabyte file is refused after this many bytes, not read until memory ends.
MAX_TEXT_BYTES = 64 * 2**20


def read_text_file(path: str | Path, what: str, limit: int = MAX_TEXT_BYTES) -> str:
    """The content of a UTF-8 text file, or one :class:`InputError` line naming ``what``.

    Not UTF-8: the line and byte offset of the first bad byte. NUL bytes mean a binary file
    even where they happen to decode. More than ``limit`` bytes: refused, having read no more
    than ``limit + 1`` of them.
    """
    file = Path(path).expanduser()
    try:
        with file.open("rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise InputError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{what} {path}: is a folder, not a text file") from None
    except OSError as error:
        raise InputError(f"{what} {path}: cannot read ({error.strerror or error})") from None
    if len(data) > limit:
        raise InputError(f"{what} {path}: larger than {limit // 2**20} MiB; not a text input")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise InputError(
            f"{what} {path}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset "
            f"{error.start}, line {line}); save it as UTF-8"
        ) from None
    if "\x00" in text:
        offset = data.index(b"\x00")
        line = data.count(b"\n", 0, offset) + 1
        raise InputError(
            f"{what} {path}: a binary file, not text (NUL byte at offset {offset}, line {line})"
        )
    return text
