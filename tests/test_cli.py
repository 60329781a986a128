"""The headless CLI: up-front validation, listing and showing runs, the package's layering."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from diffusionscope.core.cli import main
from diffusionscope.core.runs import RunWriter

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--modes", "bogus"], "unknown mode 'bogus'"),
        (["--modes", ""], "name at least one"),
        (["--modes", "schedule", "--num-samples", "0"], "--num-samples: must be positive"),
        (["--modes", "schedule", "--steps", "-3"], "must be positive"),
        (["--modes", "schedule", "--device", "tpu"], "--device: expected one of"),
        (["--modes", "schedule", "--dtype", "fp8"], "--dtype: choose one of"),
        (["--modes", "schedule", "--model", "/no/such/folder"], "no such folder"),
        (["--modes", "schedule", "--model", "x.ckpt"], "no such file"),
    ],
)
def test_bad_options_one_line_exit_2_nothing_written(
    runs_root: Path, capsys: pytest.CaptureFixture[str], options: list[str], expected: str
) -> None:
    code = main(["run", *options, "--runs-root", str(runs_root)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("diffusionscope: error: ") and expected in err
    assert len(err.splitlines()) == 1
    assert list(runs_root.iterdir()) == []


def test_pickle_checkpoint_needs_flag(runs_root: Path, tmp_path: Path, capsys) -> None:
    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_bytes(b"x")
    code = main(
        ["run", "--modes", "schedule", "--model", str(checkpoint), "--runs-root", str(runs_root)]
    )
    assert code == 2 and "--allow-pickle" in capsys.readouterr().err
    assert list(runs_root.iterdir()) == []


def test_error_is_one_line_from_the_console_script(runs_root: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "diffusionscope",
            "run",
            "--modes",
            "nope",
            "--runs-root",
            str(runs_root),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "diffusionscope: error: --modes: unknown mode 'nope' (known: metrics, schedule, "
        "attention, latent)"
    ]
    assert "Traceback" not in result.stderr


def test_runs_and_show(runs_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--runs-root", str(runs_root)]) == 0
    assert "no runs" in capsys.readouterr().out
    writer = RunWriter.create(
        runs_root, "listed", {"model": "digits", "modes": ["metrics"], "num_samples": 8}
    )
    writer.start()
    writer.status("running")
    writer.metric("fid", 3.25, mode="metrics", n=8)
    writer.write_results({"metrics": {"fid": {"value": 3.25, "n": 8}}})
    writer.status("finished")
    writer.close()

    assert main(["runs", "--runs-root", str(runs_root), "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["state"] == "finished" and listed["modes"] == ["metrics"]
    assert listed["key_numbers"] == {"metrics.fid": 3.25} and listed["num_samples"] == 8

    assert main(["show", str(writer.path)]) == 0
    shown = capsys.readouterr().out
    assert "finished" in shown and "value: 3.25" in shown
    assert main(["show", str(writer.path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"]["metrics"]["fid"]["n"] == 8


def test_show_rejects_non_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Resuming, the run lock, what the listing shows
# --------------------------------------------------------------------------------------------


def _interrupted_schedule_run(runs_root: Path, **changes: object) -> Path:
    from test_bad_inputs import saved_run, valid_config

    return saved_run(runs_root, "cut", valid_config(**changes))


def test_resume_takes_device_quiet_and_json_and_records_the_device(
    runs_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _interrupted_schedule_run(runs_root, device="auto")
    # Stopped after its one mode completed: the resume only finishes the run.
    completed = {"schedule": {"results": {"kept": True}, "report": ""}}
    (run_dir / "checkpoint" / "completed_modes.json").write_text(json.dumps(completed))
    code = main(["run", "--resume", str(run_dir), "--device", "cpu", "--quiet", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["schedule"] == {"kept": True}  # --json took effect
    assert "schedule: starting" not in captured.err  # --quiet took effect
    config = json.loads((run_dir / "config.json").read_text())
    assert config["device"] == "cpu"
    [note] = config["changes"]
    assert note["changed"] == {"device": {"from": "auto", "to": "cpu"}}
    from diffusionscope.core.events import LogEvent
    from diffusionscope.core.runs import read_events, run_state

    logs = [e.message for e in read_events(run_dir) if isinstance(e, LogEvent)]
    assert "--device cpu given with --resume (was auto)" in logs
    assert run_state(run_dir) == "finished"


def test_resume_refused_while_another_process_holds_the_run(
    runs_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _interrupted_schedule_run(runs_root)
    holder = RunWriter.reopen(run_dir)  # as a first --resume would
    try:
        before = sorted(p.name for p in run_dir.rglob("*"))
        assert main(["run", "--resume", str(run_dir)]) == 2
        [line] = capsys.readouterr().err.splitlines()
        assert line.startswith("diffusionscope: error: ") and "in use by another process" in line
        assert sorted(p.name for p in run_dir.rglob("*")) == before
    finally:
        holder.close()


def test_two_simultaneous_resumes_one_proceeds(runs_root: Path) -> None:
    run_dir = _interrupted_schedule_run(runs_root)
    command = [sys.executable, "-m", "diffusionscope", "run", "--resume", str(run_dir), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    processes = [
        subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, cwd=runs_root)
        for _ in range(2)
    ]
    outcomes = sorted((p.wait(timeout=300), p.stderr.read()) for p in processes)  # type: ignore[union-attr]
    (won, won_err), (lost, lost_err) = outcomes
    assert (won, lost) == (0, 2), outcomes
    assert "finished:" in won_err
    [line] = lost_err.splitlines()
    # Started together, the loser finds the run locked; started after the winner ended, it
    # finds it finished. Either way it is refused in one line and the run ran once.
    assert re.match(
        r"diffusionscope: error: .*(in use by another process|already finished)", line
    ), line
    from diffusionscope.core.events import StatusEvent
    from diffusionscope.core.runs import read_events

    statuses = [e.message for e in read_events(run_dir) if isinstance(e, StatusEvent)]
    assert statuses.count("resumed") == 1


def test_a_torn_final_line_still_reads_finished_everywhere(
    runs_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    writer = RunWriter.create(runs_root, "torn", {"model": "digits", "modes": ["schedule"]})
    writer.start()
    writer.status("running")
    writer.write_results({"schedule": {"checks": []}})
    writer.status("finished")
    writer.close()
    events = writer.path / "events.jsonl"
    events.write_bytes(events.read_bytes()[:-12])
    assert main(["runs", "--runs-root", str(runs_root), "--json"]) == 0
    assert [run["state"] for run in json.loads(capsys.readouterr().out)] == ["finished"]
    assert main(["show", str(writer.path)]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith(": finished")
    assert main(["run", "--resume", str(writer.path)]) == 2
    assert "already finished" in capsys.readouterr().err


def test_a_modes_check_model_hook_runs_before_the_run_directory(
    runs_root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffusionscope.core import schedule
    from diffusionscope.core.errors import InputError

    seen: list[object] = []

    def check_model(args: object, model_configs: object) -> None:
        seen.append(model_configs)
        raise InputError("model digits-ldm: the schedule mode refuses it (a test)")

    monkeypatch.setattr(schedule, "check_model", check_model, raising=False)
    assert main(["run", "--modes", "schedule", "--runs-root", str(runs_root)]) == 2
    assert capsys.readouterr().err.strip().endswith("the schedule mode refuses it (a test)")
    assert list(runs_root.iterdir()) == []
    [configs] = seen
    assert configs.pipeline_class == "StableDiffusionPipeline"  # type: ignore[attr-defined]
    assert "num_train_timesteps" in configs.scheduler  # type: ignore[attr-defined]
    assert "sample_size" in configs.denoiser_config  # type: ignore[attr-defined]


def test_runs_and_show_print_user_strings_literally(
    runs_root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    run_dir = runs_root / "20250101-000000-[bold red]x[blink]\x1b]0;owned\x07"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(
        json.dumps({"model": "[red]sd\x1b[2J", "modes": ["attention"]})
    )
    (run_dir / "results.json").write_text(
        json.dumps({"attention": {"prompt": "a [b]red[/b] seven\x1b[31m in red\x9b0m [/INST]"}})
    )
    assert main(["runs", "--runs-root", str(runs_root)]) == 0
    listed = capsys.readouterr().out
    assert "20250101-000000-[bold red]x[blink]" in listed and "[red]sd" in listed
    assert main(["show", str(run_dir)]) == 0
    shown = capsys.readouterr().out
    assert "prompt: a [b]red[/b] seven in red [/INST]" in shown
    for output in (listed, shown):
        assert not set(output) & {"\x1b", "\x07", "\x9b"}


def test_progress_lines_drop_escapes_and_keep_markup() -> None:
    import io

    from rich.console import Console

    from diffusionscope.core.events import LogEvent
    from diffusionscope.core.progress import ProgressDisplay

    buffer = io.StringIO()
    display = ProgressDisplay(Console(file=buffer, width=200))
    display.handle(
        LogEvent(message="prompt [red]x[/] \x1b[2Jcleared\x1b]0;title\x07", mode="latent")
    )
    assert buffer.getvalue() == "latent: prompt [red]x[/] cleared\n"


def test_a_run_in_process_gives_back_the_signal_handlers(runs_root: Path, tmp_path: Path) -> None:
    """``main()`` stops on SIGTERM/SIGHUP only while its run lasts: afterwards the process's
    own handlers are back (a test process must still end on SIGTERM)."""
    import signal

    config = tmp_path / "scheduler_config.json"
    config.write_text(json.dumps({"_class_name": "DDPMScheduler", "num_train_timesteps": 100}))

    def own(signum: int, frame: object) -> None:
        del signum, frame

    before = signal.signal(signal.SIGTERM, own)
    try:
        argv = ["run", "--modes", "schedule", "--model", str(config), "--quiet"]
        assert main([*argv, "--runs-root", str(runs_root)]) == 0
        assert signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, before)


def test_benchmarks_help_lists_them_without_running_any() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")]
    names = sorted(p.stem for p in (REPO / "benchmarks").glob("*.py") if not p.stem.startswith("_"))
    assert listed == names and "==" not in result.stdout  # "== name" heads a benchmark's run
