"""Latent OOD at native latent sizes: peak memory and CPU time of fitting the score on 1000
reference latents of random data and scoring 100 more, one fresh process per shape.

``python -m benchmarks ood_scale``: one line per shape, ending ``peak_mb=<n> cpu_s=<n>``
(targets: each <= 2048 MB and <= 120 CPU-s). ``peak_mb`` is the child process's peak resident
memory (``ru_maxrss``) above its resident memory once Python, torch and scikit-learn are
imported (about 800 MB of mostly library pages, printed as ``imports_mb``): the 1000 latents
themselves (1.07 GB of float32 at Flux-1024), the fit and the score. ``cpu_s`` is the child's
CPU time from making the latents to the last score. A dense covariance over the whole latent,
as the score used before, would need 2.1 GB (SD 1.5), 34 GB (SDXL) and 550 GB (Flux) for the
matrix alone.
"""

from __future__ import annotations

import json
import subprocess
import sys

SHAPES = {
    "SD1.5-512": (4, 64, 64),
    "SDXL-1024": (4, 128, 128),
    "Flux-1024": (16, 128, 128),
}
REFERENCE, SCORED = 1000, 100


def _resident_mb() -> float:
    """This process's resident memory now (Linux ``/proc``)."""
    import os

    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _child(channels: int, height: int, width: int) -> None:
    import resource
    import time

    import numpy as np
    import torch

    from diffusionscope.core.latent.ood import fit_mahalanobis, latent_summary

    imports_mb = _resident_mb()
    started = time.process_time()
    generator = torch.Generator().manual_seed(0)
    shape = (channels, height, width)
    reference = torch.randn(REFERENCE, *shape, generator=generator).numpy()
    new = torch.randn(SCORED, *shape, generator=generator).numpy()
    model = fit_mahalanobis(reference, name="latent_mahalanobis", summary=latent_summary)
    scores = model.score(new)
    result = {
        "dims": int(model.centres.shape[1]),
        "flagged": float(np.mean(scores > model.threshold)),
        "cpu_s": time.process_time() - started,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - imports_mb,
        "imports_mb": imports_mb,
    }
    print(json.dumps(result))


def main() -> None:
    for name, shape in SHAPES.items():
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.ood_scale", "--child", *map(str, shape)],
            capture_output=True,
            text=True,
            check=True,
        )
        found = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"   {name} latent {'x'.join(map(str, shape))}: score on {found['dims']} numbers "
            f"per latent, {found['flagged']:.0%} of new random latents flagged, "
            f"imports_mb={found['imports_mb']:.0f} peak_mb={found['peak_mb']:.0f} cpu_s={found['cpu_s']:.1f}",
            flush=True,
        )


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    _child(*map(int, sys.argv[2:5]))
