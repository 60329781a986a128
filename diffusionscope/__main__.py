"""``diffusionscope`` / ``python -m diffusionscope``: the one entry point.

No arguments, or ``tui``, opens the workbench; anything else is the headless CLI. The choice is
made here, above both layers, so the engine (``core``) never imports the workbench.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] != "tui":
        from .core.cli import main as cli_main

        return cli_main(argv)
    from .core.cli import parse_workbench_args
    from .core.errors import InputError, report_input_error

    try:
        options = parse_workbench_args(argv[1:])
    except InputError as error:
        return report_input_error(error)
    from .tui.app import run_app

    return run_app(model=options.model, runs_root=options.runs_root)


if __name__ == "__main__":
    sys.exit(main())
