"""diffusionscope's engine: loading, runs and the analysis modes. Never imports Textual."""

if __name__ != "diffusionscope.core":
    # The folder is also importable as ``core`` from the repository root; a second copy of the
    # engine under that name would hold its own classes (its InputError is not ours). Under
    # ``python -m`` the message is the whole output (runpy would print a traceback for an error).
    import sys as _sys

    _message = f"import diffusionscope.core (installed as diffusionscope), not {__name__}"
    if _sys.argv[:1] == ["-m"]:
        raise SystemExit(f"error: {_message}; run python -m diffusionscope")
    raise ImportError(_message)


__version__ = "0.1.0"
