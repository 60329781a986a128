"""The diffusionscope workbench: a Textual front end over the headless CLI's run directories.

Nothing here computes a metric. Runs are child processes of ``python -m diffusionscope run``; the
app reads what they write (``events.jsonl``, ``results.json``, ``artifacts/``). Heavy imports
(torch, diffusers) happen only inside workers, so the app opens fast.
"""

if __name__ != "diffusionscope.tui":
    # The folder is also importable as ``tui`` from the repository root; a second copy under
    # that name would import a second engine. Under ``python -m`` the message is the whole
    # output (runpy would print a traceback for an error).
    import sys as _sys

    _message = f"import diffusionscope.tui (installed as diffusionscope), not {__name__}"
    if _sys.argv[:1] == ["-m"]:
        raise SystemExit(f"error: {_message}; run python -m diffusionscope")
    raise ImportError(_message)
