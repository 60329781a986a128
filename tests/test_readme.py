"""Every command the README calls runnable offline runs offline, as written, from a fresh
checkout's folder: the block is read from README.md itself, so an edit there is tested here.

Counts are made small (``-n``, ``--steps``) and each run gets a private runs root; nothing else
of a command changes. The commands run in-process, through the CLI's own entry point.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from diffusionscope.core.cli import main

REPO = Path(__file__).resolve().parent.parent
OFFLINE_BLOCK_INTRO = "each runnable offline on a CPU with the shipped models"
SMALL_COUNTS = {"-n": "8", "--num-samples": "8", "--steps": "2"}


def offline_commands() -> list[list[str]]:
    """The ``diffusionscope`` commands of the README's offline block, continuation lines
    joined and comments dropped."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split(OFFLINE_BLOCK_INTRO, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    joined = block.replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines()]
    return [shlex.split(line) for line in lines if line.startswith("diffusionscope ")]


def with_small_counts(argv: list[str]) -> list[str]:
    small = list(argv)
    for index, word in enumerate(small[:-1]):
        if word in SMALL_COUNTS:
            small[index + 1] = SMALL_COUNTS[word]
    return small


COMMANDS = offline_commands()


def test_the_block_holds_one_example_per_mode_and_the_fid_command() -> None:
    modes = {argv[argv.index("--modes") + 1] for argv in COMMANDS if "--modes" in argv}
    assert modes == {"metrics", "schedule", "attention", "latent"}
    assert any(argv[1] == "fid" for argv in COMMANDS)


@pytest.fixture(scope="module")
def reference_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One reference cache for the examples: the shipped digits are read once, as a user's
    second run would find them."""
    return tmp_path_factory.mktemp("reference-cache")


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(a[1:4]) for a in COMMANDS])
def test_offline_example_runs_as_written(
    argv: list[str],
    tmp_path: Path,
    reference_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("DIFFUSIONSCOPE_CACHE", str(reference_cache))
    command = with_small_counts(argv[1:])
    if command[0] == "run":
        command += ["--runs-root", str(tmp_path / "runs"), "--quiet"]
    code = main(command)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    if command[0] == "run":
        [run_dir] = (tmp_path / "runs").iterdir()
        assert (run_dir / "results.json").is_file()
