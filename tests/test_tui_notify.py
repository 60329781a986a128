"""A run that finishes or fails is announced: a toast, the terminal bell and the OSC 9 / OSC 777
desktop-notification escapes, written to the terminal driver once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from test_tui_fakes import (
    SIZE,
    async_test,
    fake_run_argv,
    isolated_config,  # noqa: F401 -- fixture
    kill_group,
    make_app,
    wait_for,
)

from diffusionscope.tui.launcher import _spawn
from diffusionscope.tui.notify import desktop_escapes, terminal_notification, tmux_passthrough

pytestmark = pytest.mark.usefixtures("isolated_config")


def test_escapes_carry_plain_one_line_text() -> None:
    escapes = desktop_escapes("run x finished", "FID 12.5; KID\x1b[2J 3\nnext\a")
    assert escapes == (
        "\x1b]9;run x finished: FID 12.5, KID 3 next\a"
        "\x1b]777;notify;run x finished;FID 12.5, KID 3 next\a"
    )
    assert terminal_notification("t", "b", in_tmux=False) == "\a" + desktop_escapes("t", "b")
    wrapped = terminal_notification("t", "b", in_tmux=True)
    assert wrapped == "\a" + tmux_passthrough(desktop_escapes("t", "b"))
    assert wrapped.startswith("\a\x1bPtmux;\x1b\x1b]9;t: b\a") and wrapped.endswith("\x1b\\")
    assert len(desktop_escapes("t", "x" * 1000)) < 600


class Capture:
    """What the app writes to its terminal driver, and the toasts it raises."""

    def __init__(self, app, monkeypatch: pytest.MonkeyPatch) -> None:
        self.written: list[str] = []
        self.toasts: list[tuple[str, str]] = []
        monkeypatch.setattr(app._driver, "write", self.written.append)
        notify = app.notify

        def toast(message, *args, **kwargs):
            self.toasts.append((str(message), kwargs.get("severity", "information")))
            return notify(message, *args, **kwargs)

        monkeypatch.setattr(app, "notify", toast)

    @property
    def terminal(self) -> str:
        return "".join(self.written)


@async_test
async def test_a_finished_run_is_announced_once(
    runs_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TMUX", raising=False)
    app = make_app(runs_root)
    async with app.run_test(size=SIZE) as pilot:
        capture = Capture(app, monkeypatch)
        launched = _spawn(
            fake_run_argv(runs_root, "fid-note01", tmp_path / "go"), runs_root, "note01"
        )
        try:
            app.launched.append(launched)
            app.watch_run(launched=launched)
            await pilot.pause(1.5)
            assert capture.terminal == "" and capture.toasts == []  # still running
            (tmp_path / "go").touch()
            await wait_for(pilot, lambda: capture.written)
            run_name = launched.find_run_dir().name
            title = f"diffusionscope: {run_name} finished"
            assert capture.terminal == terminal_notification(title, "FID 25", in_tmux=False)
            assert capture.toasts == [(f"{run_name} finished\nFID 25", "information")]
            await pilot.pause(1.5)
            assert len(capture.written) == 1  # once
        finally:
            kill_group(launched.process)


REFUSING = "import sys; print('diffusionscope: error: --steps: must be positive, got 0', file=sys.stderr); sys.exit(2)"


@async_test
async def test_a_refused_run_is_announced_as_failed(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1,0")
    app = make_app(runs_root)
    async with app.run_test(size=SIZE) as pilot:
        capture = Capture(app, monkeypatch)
        launched = _spawn([sys.executable, "-c", REFUSING], runs_root, "refuse")
        try:
            app.launched.append(launched)
            app.watch_run(launched=launched)
            await wait_for(pilot, lambda: capture.written)
            message = "--steps: must be positive, got 0"
            expected = terminal_notification(
                f"diffusionscope: run (pid {launched.pid}) failed", message, in_tmux=True
            )
            assert capture.terminal == expected
            assert capture.toasts[0][1] == "error" and message in capture.toasts[0][0]
        finally:
            kill_group(launched.process)
