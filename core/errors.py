"""Errors that reach the user as one line.

Anything raised as :class:`InputError` is printed as ``diffusionscope: error: <message>`` with
exit code 2 and no traceback; the message names the offending input and what is wrong with it.
"""

from __future__ import annotations

import sys

PROG = "diffusionscope"
EXIT_USAGE = 2


class InputError(Exception):
    """Bad user input: a path, an option value, a file's content, a model that does not fit."""


class RunInterrupted(BaseException):
    """The run was asked to stop (SIGTERM/SIGHUP); the last checkpoint is kept for ``--resume``.

    A ``BaseException``, like ``KeyboardInterrupt``: raised from a signal handler at any line,
    it must pass through the ``except Exception`` of whatever code it lands in (a loader that
    turns every failure into one line would report a stop as a broken model).
    """


def report_input_error(error: InputError) -> int:
    """Print ``error`` as the project's one line on stderr; the exit code for bad input.

    The message often quotes user input (a path, a prompt, a library's text): line breaks fold
    into spaces and terminal escapes are dropped, so it stays one line and cannot restyle the
    terminal.
    """
    from .text import one_line

    print(f"{PROG}: error: {one_line(error)}", file=sys.stderr)
    return EXIT_USAGE
