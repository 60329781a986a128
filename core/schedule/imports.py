"""Importing diffusers for scheduler work without its import-time ``torch._dynamo`` load.

``diffusers.utils.torch_utils`` imports ``torch._dynamo`` when it is first imported, only to
fetch ``allow_in_graph`` (a hint for ``torch.compile``), inside ``try/except ImportError`` with
an identity fallback. On a two-core CPU that load is 1.5 s of the 4.5 s it takes to import a
scheduler, a third of a schedule run. Schedulers never compile, so the schedule mode imports
diffusers with that one module blocked: diffusers takes its own fallback, and the block is
lifted at once, so a later ``import torch._dynamo`` (or ``torch.compile``) works as usual.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

DYNAMO = "torch._dynamo"


def import_diffusers() -> ModuleType:
    """``diffusers``, imported as cheaply as the process allows."""
    if "diffusers.utils" in sys.modules or DYNAMO in sys.modules:
        return importlib.import_module("diffusers")
    import torch  # noqa: F401  (imported whole first: torch's own imports are left alone)

    sys.modules[DYNAMO] = None  # type: ignore[assignment]  # makes `import torch._dynamo` fail
    try:
        importlib.import_module("diffusers.utils")
    except ImportError:
        # A diffusers release that needs the module for real: drop what half-loaded, retry.
        for name in [n for n in sys.modules if n == "diffusers" or n.startswith("diffusers.")]:
            del sys.modules[name]
    finally:
        if sys.modules.get(DYNAMO, 0) is None:
            del sys.modules[DYNAMO]
    return importlib.import_module("diffusers")
