"""Listing 1 000 runs: the workbench's cached index vs reading every run afresh (``list_runs``).

The runs root holds 999 small finished metrics runs and one long run of 40 000 events, written
with the real RunWriter. Three timings: the first listing (nothing cached), a refresh with
nothing changed (what the runs screen does every 2 s), and a refresh after the long run grew by
one event; the baseline is ``core.runs.list_runs``, which re-reads every ``events.jsonl``. Then
the runs screen itself: from F2 to a table of 1 000 rows, headless. Target: under 0.5 s.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

RUNS = 1000
LONG_RUN_EVENTS = 40_000
REPEATS = 5
TARGET_SECONDS = 0.5


def make_runs(root: Path) -> Path:
    from diffusionscope.core.atomic import atomic_write_json
    from diffusionscope.core.runs import RunWriter

    long_run = None
    for index in range(RUNS):
        path = (
            root
            / f"2024{index // 100 + 1:02d}{index % 28 + 1:02d}-1200{index % 60:02d}-metrics-{index:04d}"
        )
        path.mkdir(parents=True)
        atomic_write_json(
            path / "config.json",
            {"modes": ["metrics"], "model": f"org/model-{index % 7}", "num_samples": 500},
        )
        writer = RunWriter(path)
        writer._events_file = open(path / "events.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        writer.status("running", "started")
        events = LONG_RUN_EVENTS if index == 0 else 12
        for n in range(events // 2):
            writer.progress("generate", n, events // 2, unit="img", mode="metrics")
            writer.series("fid", n, 100.0 / (n + 1), mode="metrics")
        writer.metric("fid", 12.5 + index % 10, mode="metrics", n=500, interval=[11.0, 14.0])
        writer.metric("kid", 0.004, mode="metrics", n=500, std=0.001)
        if index == 0:
            long_run = writer  # left open: it grows during the benchmark
            continue
        writer.write_results(
            {
                "run": {"modes": ["metrics"]},
                "metrics": {"fid": {"value": 12.5, "n": 500, "interval": [11, 14]}},
            }
        )
        writer.status("finished")
        writer.close()
    assert long_run is not None
    long_run.status("finished")
    long_run.close()
    return root / sorted(p.name for p in root.iterdir())[0]


def best(function, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def screen_seconds(root: Path) -> list[tuple[float, float]]:
    """``(wall, CPU)`` seconds from F2 to a table of every run, for the first F2 (after the
    app's start-up read of the runs root) and the next two (the screen is kept)."""
    from diffusionscope.tui.app import WorkbenchApp

    async def run() -> list[tuple[float, float]]:
        app = WorkbenchApp(runs_root=root, image_renderer="halfcell", theme="textual-dark")
        async with app.run_test(size=(120, 36)) as pilot:
            while app._run_index is None or len(app._run_index._entries) < RUNS:
                await pilot.pause(0.05)  # the background read at start-up
            timings = []
            for _ in range(3):
                wall, cpu = time.perf_counter(), time.process_time()
                await pilot.press("f2")
                table = app.screen.query_one("#runs-table")
                while table.row_count < RUNS:
                    await pilot.pause(0.005)
                timings.append((time.perf_counter() - wall, time.process_time() - cpu))
                await pilot.press("escape")
            return timings

    return asyncio.run(run())


def main() -> None:
    from diffusionscope.core.runs import list_runs
    from diffusionscope.tui.run_index import RunIndex

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        started = time.perf_counter()
        long_run = make_runs(root)
        print(
            f"{RUNS} runs written in {time.perf_counter() - started:.1f} s "
            f"(one of {LONG_RUN_EVENTS} events)"
        )

        baseline = best(lambda: list_runs(root), repeats=2)
        cold = best(lambda: RunIndex(root).refresh(), repeats=2)
        index = RunIndex(root)
        index.refresh()
        warm = best(index.refresh)

        def grow_and_refresh() -> None:
            with open(long_run / "events.jsonl", "a", encoding="utf-8") as handle:
                handle.write('{"type": "log", "time": 1.0, "message": "one more"}\n')
            index.refresh()

        grown = best(grow_and_refresh)
        screens = screen_seconds(root)
        load = os.getloadavg()[0]

    print(f"list_runs (re-reads every events.jsonl): {baseline:.3f} s")
    print(f"index, first listing:                    {cold:.3f} s")
    print(f"index, refresh with nothing changed:     {warm:.3f} s  ({baseline / warm:.0f}x faster)")
    print(f"index, refresh after one run grew:       {grown:.3f} s")
    (first_wall, first_cpu), *again = screens
    print(
        f"runs screen, first F2 to {RUNS} rows:      {first_wall:.3f} s wall, {first_cpu:.3f} s CPU "
        f"(target < {TARGET_SECONDS} s)"
    )
    print(
        f"runs screen, F2 again:                   "
        f"{statistics.median(w for w, _ in again):.3f} s wall, "
        f"{statistics.median(c for _, c in again):.3f} s CPU"
    )
    print(f"(load average {load:.1f} on {os.cpu_count()} cores while measuring)")


if __name__ == "__main__":
    main()
