"""The headless commands: ``diffusionscope run|runs|show|fid|stats``.

Every option is validated before a run directory exists, so bad input costs one line on stderr,
exit code 2 and leaves nothing behind. A run writes only through :class:`diffusionscope.core.runs.RunWriter`,
so the TUI, this command and the tests all see the same files.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import sys
import time
import traceback
from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .atomic import atomic_write_json, json_safe
from .errors import (
    EXIT_USAGE,
    PROG,
    InputError,
    RunInterrupted,
    report_input_error,
)
from .events import MetricEvent
from .modes import MODE_NAMES, Mode, ModeResult, RunContext, available_modes, declared_options
from .options import (
    DEVICE,
    GENERATION_OPTIONS,
    GENERATION_TITLE,
    HOW_OPTIONS,
    JSON,
    MODEL,
    MODES,
    RUN_OPTIONS,
    RUNS_ROOT,
    Option,
    add_options,
    build_options,
)
from .run_time import run_seconds
from .runs import (
    CONFIG,
    CONFIG_NOTES,
    RESULTS,
    RunWriter,
    check_runs_root,
    list_runs,
    read_events,
    read_json,
    run_info,
    runs_root,
)
from .storage import describe_write_failure, is_storage_error
from .text import one_line, printable, read_text_file

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130
EXIT_BROKEN_PIPE = 128 + 13  # killed by SIGPIPE, as the shell reports it
COMPLETED_MODES = "completed_modes.json"

#: What ``run --resume DIR`` may be given: the "how" options (``core.options.HOW_OPTIONS``,
#: which override the saved ones) and ``--resume`` itself.
RESUME_OPTIONS = frozenset({*HOW_OPTIONS, "resume"})
#: Options that are not part of a run's configuration: ``config.json`` leaves them out.
NOT_SAVED = frozenset({"command", "resume", "json", "quiet"})
#: Keys every run's ``config.json`` has; a saved configuration without them is refused.
REQUIRED_CONFIG_KEYS = ("modes", "model", "seed", "device", "dtype")
#: Of those, the ones that always hold a value (``model`` is null for ``--generated``).
REQUIRED_VALUES = ("modes", "seed", "device", "dtype")
#: The loggers of the libraries that load models, and the variable each reads its level from.
LIBRARY_VERBOSITY = {
    "diffusers": "DIFFUSERS_VERBOSITY",
    "transformers": "TRANSFORMERS_VERBOSITY",
    "huggingface_hub": "HF_HUB_VERBOSITY",
}


def default_model() -> str:
    from .zoo import DIGITS_LDM

    return str(DIGITS_LDM)


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are the project's one-line form with exit code 2, worded as the
    declarations word them (``--steps: must be positive, got 0``)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(re.sub(r"^argument (-\w/)?", "", message))


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The CLI, rendered from the declarations in :mod:`diffusionscope.core.options` and each
    mode's ``OPTIONS`` (the workbench's form is rendered from the same declarations)."""
    parser = _Parser(prog=PROG, description="Analyse pretrained diffusion models.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    run = sub.add_parser("run", help="run analysis modes headless, writing a run directory")
    modes = available_modes()
    add_options(run, [replace(MODES, help=f"{MODES.help}: {', '.join(MODE_NAMES)}")])
    add_options(run, [option for option in RUN_OPTIONS if option is not MODES])
    add_options(run.add_argument_group(GENERATION_TITLE), GENERATION_OPTIONS)
    for name, module in modes.items():
        group = run.add_argument_group(f"{name} mode", module.DESCRIPTION)
        add_options(group, module.OPTIONS)

    runs = sub.add_parser("runs", help="list runs and their status")
    add_options(runs, [RUNS_ROOT, JSON])

    show = sub.add_parser("show", help="print a run's results")
    show.add_argument("run_dir")
    add_options(show, [JSON])

    fid_options = getattr(modes.get("metrics"), "FID_OPTIONS", None)
    if fid_options is not None:
        fid = sub.add_parser("fid", help="FID between two image folders or .npz statistics files")
        fid.add_argument("path_a")
        fid.add_argument("path_b")
        add_options(fid, fid_options)
    stats_options = getattr(modes.get("metrics"), "STATS_OPTIONS", None)
    if stats_options is not None:
        stats = sub.add_parser(
            "stats",
            help="write reference statistics (mu, sigma, features, protocol) of an image "
            "folder, ADM image batch or caption set",
        )
        stats.add_argument("source", metavar="FOLDER_OR_CAPTION_SET")
        add_options(stats, stats_options)

    if "metrics" in modes:
        compare = sub.add_parser(
            "compare", help="paired differences of two metrics runs with the same seeds"
        )
        compare.add_argument("run_a")
        compare.add_argument("run_b")
        add_options(compare, [DEVICE, JSON])

    tui = sub.add_parser("tui", help="open the workbench (the default with no arguments)")
    add_options(tui, [MODEL, RUNS_ROOT])
    return parser


def parse_modes(value: str | Sequence[str] | None) -> list[str]:
    """``--modes`` as given (comma-separated) or as saved (a list): known, available, once each."""
    if isinstance(value, str) or value is None:
        modes = [m.strip() for m in (value or "").split(",") if m.strip()]
    elif all(isinstance(m, str) for m in value):
        modes = [m.strip() for m in value]
    else:
        raise InputError(f"--modes: expected mode names, got {value!r}")
    if not modes:
        raise InputError(f"--modes: name at least one of {', '.join(MODE_NAMES)}")
    known = available_modes()
    for mode in modes:
        if mode not in MODE_NAMES:
            raise InputError(f"--modes: unknown mode {mode!r} (known: {', '.join(MODE_NAMES)})")
        if mode not in known:
            raise InputError(f"--modes: the {mode} mode is not available in this build")
    if len(set(modes)) != len(modes):
        raise InputError(f"--modes: a mode is named twice in {','.join(modes)!r}")
    return modes


def validate_run_args(args: argparse.Namespace) -> None:
    """Check everything that can be checked before a new run's directory exists."""
    args.modes = parse_modes(args.modes)
    if args.model is None and not getattr(args, "generated", None):
        args.model = default_model()
    check_run_inputs(args)


def mode_options(args: argparse.Namespace, mode: str) -> Any:
    """The frozen options object ``mode`` receives, built from the run's configuration and
    the declared defaults (:func:`diffusionscope.core.options.build_options`)."""
    module = available_modes()[mode]
    return build_options(module.Options, vars(args), mode, declared_options())


def check_run_inputs(args: argparse.Namespace) -> None:
    """The checks a new and a resumed run share, all before anything is written: the model's
    files, the device, the shared input files, each mode's options, and each mode's verdict on
    the model's configs."""
    from .loading import resolve_device, resolve_dtype

    modules = [available_modes()[mode] for mode in args.modes]
    options = [mode_options(args, mode) for mode in args.modes]
    if args.model is not None:
        _check_model_source(args, needs_pipeline=any(m.NEEDS_PIPELINE for m in modules))
    resolve_dtype(args.dtype, resolve_device(args.device))
    if getattr(args, "batch_size", None) == "auto" and set(args.modes) - {"metrics"}:
        raise InputError(
            "--batch-size auto: only the metrics mode sizes its own batches; give a number"
        )
    if args.prompts_file is not None:
        read_text_file(args.prompts_file, "--prompts-file")
    for module, mode_view in zip(modules, options, strict=True):
        module.validate(mode_view)
    _check_model_fits(args, modules, options)


def _check_model_source(args: argparse.Namespace, *, needs_pipeline: bool) -> None:
    """What ``--model`` names exists, may be read, and -- where the run loads weights -- has
    whole weights files (headers and sizes) or, on an offline host, is in the local cache."""
    from .loading import check_hub_files, check_model_weights, classify_source, looks_like_hub_id

    kind = classify_source(args.model)
    if args.single_file_config is not None and kind != "single_file":
        raise InputError(
            f"--single-file-config {args.single_file_config}: only for a single-file --model "
            f"(a .safetensors checkpoint); {args.model!r} is a {kind.replace('_', ' ')}"
        )
    if args.single_file_config is not None:
        config = Path(args.single_file_config).expanduser()
        if not (config / "model_index.json").is_file() and (
            config.exists() or not looks_like_hub_id(args.single_file_config)
        ):
            raise InputError(
                f"--single-file-config {args.single_file_config}: not a diffusers folder (no "
                "model_index.json) nor a hub id"
            )
    if kind == "scheduler_config" and needs_pipeline:
        raise InputError(
            f"model {args.model!r}: a scheduler config is enough only for the schedule mode"
        )
    suffix = Path(args.model).suffix.lower()
    if kind == "single_file" and suffix != ".safetensors" and not args.allow_pickle:
        raise InputError(
            f"model {args.model!r}: {Path(args.model).suffix} files are pickles that can "
            "run code when loaded; convert to .safetensors, or pass --allow-pickle"
        )
    if not needs_pipeline:
        return
    if kind == "hub":
        check_hub_files(args.model, ("model_index.json",), "model")
    else:
        check_model_weights(args.model)


def _check_model_fits(args: argparse.Namespace, modules: list[Mode], options: list[Any]) -> None:
    """Each mode's ``check_model(options, model_configs)``, given what the model's configs
    say (:class:`diffusionscope.core.families.ModelConfigs`, read without weights; None when
    no model is named): a mode refuses a model it cannot analyse before the run directory
    exists."""
    needs_pipeline = args.model is not None and any(m.NEEDS_PIPELINE for m in modules)
    from .families import read_model_configs

    configs = None
    if args.model is not None:
        configs = read_model_configs(args.model, args.single_file_config)
    if needs_pipeline and configs is not None and configs.kind != "scheduler_config":
        from .preflight import check_pipeline

        check_pipeline(args, configs)
    for module, mode_view in zip(modules, options, strict=True):
        module.check_model(mode_view, configs)


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if k not in NOT_SAVED}


# --------------------------------------------------------------------------------------------
# Resuming: the saved configuration, checked like a new one
# --------------------------------------------------------------------------------------------


def given_options(argv: Sequence[str]) -> set[str]:
    """The destinations of the ``run`` options written on the command line, whatever their
    value (one given equal to its default counts: ``--seed 0`` with ``--resume`` is refused)."""
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for action in subcommands.choices["run"]._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(list(argv)))) - {"command"}


def restore_run_config(
    args: argparse.Namespace, given: Collection[str]
) -> tuple[argparse.Namespace, dict[str, tuple[Any, Any]]]:
    """The configuration of the run ``--resume`` names, checked as a new run's is, with the
    "how" options given now (``HOW_OPTIONS``) in place of the saved ones; and the saved values
    those change, as ``{name: (old, new)}``. Any other option given is refused: a resumed run
    measures what it started measuring."""
    run_dir = Path(args.resume)
    if not run_dir.is_dir():
        raise InputError(f"--resume {run_dir}: no such run directory")
    if not (run_dir / CONFIG).is_file():
        raise InputError(f"--resume {run_dir}: not a run directory (no {CONFIG})")
    if (run_dir / RESULTS).is_file():
        raise InputError(f"--resume {run_dir}: run already finished")
    options = declared_options()
    refused = [
        option.flag
        for dest, option in options.items()
        if dest in given and dest not in RESUME_OPTIONS
    ]
    if refused:
        allowed = ", ".join(options[name].flag for name in HOW_OPTIONS)
        raise InputError(
            f"--resume {run_dir}: {', '.join(refused)} cannot be given with --resume (a resumed "
            f"run keeps its configuration; only {allowed} may change); start a new run to change it"
        )
    config = _saved_config(run_dir, options)
    restored = argparse.Namespace(**{**vars(args), **config})
    restored.resume = str(run_dir)
    changes: dict[str, tuple[Any, Any]] = {}
    for name in HOW_OPTIONS:
        if name in given:
            setattr(restored, name, getattr(args, name))
            if name in config and config[name] != getattr(args, name):
                changes[name] = (config[name], getattr(args, name))
    restored.modes = parse_modes(restored.modes)
    check_run_inputs(restored)
    return restored, changes


def _saved_config(run_dir: Path, options: dict[str, Option]) -> dict[str, Any]:
    """``config.json`` of ``run_dir`` if it describes a run: an object with the keys every run
    has, each option's value of its declared kind and passing its declared checks (the same
    ones a value typed on the command line passes)."""
    config = read_json(run_dir / CONFIG)
    where = f"--resume {run_dir}: {CONFIG}"
    if not isinstance(config, dict):
        raise InputError(f"{where} is not a JSON object (damaged or not a run's)")
    missing = [key for key in REQUIRED_CONFIG_KEYS if key not in config]
    if missing:
        raise InputError(f"{where} lacks {', '.join(repr(k) for k in missing)}")
    modes = config["modes"]
    if not isinstance(modes, list) or not modes or not all(isinstance(m, str) for m in modes):
        raise InputError(f"{where}: 'modes' must be a list of mode names, not {modes!r}")
    for key, value in config.items():
        option = options.get(key)
        if option is None or key == "modes" or (value is None and key not in REQUIRED_VALUES):
            continue
        problem = option.check_saved(value)
        if problem:
            raise InputError(f"{where}: {key!r} is {value!r}, {problem}")
    return {
        key: options[key].restore(value) if key in options else value
        for key, value in config.items()
        if key != CONFIG_NOTES
    }


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


def _install_stop_signals() -> dict[int, Any]:
    """SIGTERM and SIGHUP (a dropped SSH session) stop the run as interrupted and resumable;
    a second one ends the process at once, as it would have without these handlers. Returns
    the handlers they replace, for :func:`_restore_signals` once the run is over (a process
    that runs several runs, a test session say, keeps its own handling between them)."""

    def stop(signum: int, _frame: Any) -> None:
        signal.signal(signum, signal.SIG_DFL)
        raise RunInterrupted(f"stopped by {signal.Signals(signum).name}")

    numbers = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    return {number: signal.signal(number, stop) for number in numbers}


def _restore_signals(previous: dict[int, Any]) -> None:
    for number, handler in previous.items():
        signal.signal(number, handler if handler is not None else signal.SIG_DFL)


def _quiet_libraries() -> None:
    """diffusers, transformers and huggingface_hub log warnings on stderr while they load
    (\"Couldn't connect to the Hub ...\" on an offline host, before the one line a failed load
    gives): errors only, unless the user set a verbosity. The variables are read when a library
    sets up its logger; the level is set too for a library already imported."""
    for library, variable in LIBRARY_VERBOSITY.items():
        if variable not in os.environ:
            os.environ[variable] = "error"
            logging.getLogger(library).setLevel(logging.ERROR)


def _model_loader(args: argparse.Namespace, writer: RunWriter) -> Any:
    cache: dict[str, Any] = {}

    def load() -> Any:
        if "model" not in cache:
            from .loading import load_pipeline

            writer.log(f"loading {args.model}")
            cache["model"] = load_pipeline(
                args.model,
                args.device,
                args.dtype,
                allow_pickle=args.allow_pickle,
                single_file_config=args.single_file_config,
            )
            for line in cache["model"].summary.lines():
                writer.log(line)
        return cache["model"]

    load.cache = cache  # type: ignore[attr-defined]
    return load


def _share_run_path(writer_path: Path | None, dist: Any) -> Path | None:
    """Rank 0 creates the run directory; every rank learns its path (needed to resume)."""
    if not dist.is_distributed:
        return writer_path
    import torch.distributed

    box = [str(writer_path) if writer_path else None]
    torch.distributed.broadcast_object_list(box, src=0)
    return Path(box[0]) if box[0] else None


def execute_run(args: argparse.Namespace, given: Collection[str] = ()) -> int:
    """``diffusionscope run``: check everything, open the run directory, run the modes.

    ``given`` names the options written on the command line (:func:`given_options`); with
    ``--resume`` only the "how" options among them are accepted.
    """
    from .distributed import init_distributed

    changes: dict[str, tuple[Any, Any]] = {}
    if args.resume is not None:
        args, changes = restore_run_config(args, given)
    else:
        validate_run_args(args)
        check_runs_root(runs_root(args.runs_root))
    dist = init_distributed(args.device)
    writer = open_run_directory(args, dist, changes)
    return run_modes(args, writer, dist, changes)


def open_run_directory(
    args: argparse.Namespace, dist: Any, changes: dict[str, tuple[Any, Any]]
) -> RunWriter:
    """Create the run directory (rank 0; every rank learns its path) or reopen the resumed
    one; either way rank 0 holds its lock until the run ends."""
    if args.resume is not None:
        writer = RunWriter.reopen(Path(args.resume), enabled=dist.is_main)
        writer.note_config_change(changes, "given with --resume")
        return writer
    name = args.name or "-".join(args.modes)
    created = None
    if dist.is_main:
        created = RunWriter.create(runs_root(args.runs_root), name, config_from_args(args))
    path = _share_run_path(created.path if created else None, dist)
    return created or RunWriter(path, enabled=False)  # type: ignore[arg-type]


def run_modes(
    args: argparse.Namespace,
    writer: RunWriter,
    dist: Any,
    changes: dict[str, tuple[Any, Any]],
) -> int:
    """Run each mode not already complete, then write the results; report how it ended."""
    display = _attach_display(writer) if dist.is_main and not args.quiet else None
    load_model = _model_loader(args, writer)
    previous_handlers = _install_stop_signals()
    try:
        writer.start()
        writer.status("running", "started" if args.resume is None else "resumed")
        for name, (old, new) in changes.items():
            writer.log(f"--{name.replace('_', '-')} {new} given with --resume (was {old})")
        if dist.is_main:
            print(f"run directory: {printable(writer.path)}", file=sys.stderr)
        completed = _run_each_mode(args, writer, dist, load_model)
        results = _assemble_results(args, completed, load_model)
        writer.write_report(_assemble_report(args, completed, writer.path))
        if dist.is_main:
            results["run"]["seconds"] = run_seconds(read_events(writer.path), time.time())
        writer.write_results(results)
        writer.status("finished")
    except InputError as error:
        writer.status("failed", str(error))
        raise
    except (KeyboardInterrupt, RunInterrupted) as error:
        message = str(error) or "interrupted"
        writer.status("interrupted", message)
        print(
            f"{PROG}: interrupted ({message}); continue with: {PROG} run --resume "
            f"{printable(writer.path)}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 -- report the failure in the run, then one line
        if is_storage_error(error):
            return _storage_failure(writer, error)  # type: ignore[arg-type]
        # Kept in events.jsonl for the bug report; at debug level, so the progress display
        # does not print its bare "Traceback (most recent call last):" first line.
        writer.log(traceback.format_exc(), level="debug")
        writer.status("failed", f"{type(error).__name__}: {error}")
        print(
            f"{PROG}: run failed: {one_line(f'{type(error).__name__}: {error}')} (traceback "
            f"in {printable(writer.path / 'events.jsonl')})",
            file=sys.stderr,
        )
        return EXIT_FAILED
    finally:
        if display is not None:
            display.stop()
        writer.close()
        _restore_signals(previous_handlers)
    if dist.is_main and args.json:
        print(json.dumps(json_safe(results)[0], indent=2, default=str))
    elif dist.is_main:
        print(f"finished: {printable(writer.path)}", file=sys.stderr)
    return EXIT_OK


def _storage_failure(writer: RunWriter, error: OSError) -> int:
    """A write the disk refused (full, over quota, read-only, permissions): one line naming
    the file and the free space; the run is left interrupted, to resume once there is room.
    Its files are whole (each is written atomically; a refused event line is cut back off)."""
    message = describe_write_failure(error, writer.path)
    with contextlib.suppress(OSError):  # the disk may refuse this line too: the run is then
        writer.status("interrupted", message)  # interrupted by its missing final status
    print(
        f"{PROG}: {one_line(message)}; the run is interrupted: make room, then continue with: "
        f"{PROG} run --resume {printable(writer.path)}",
        file=sys.stderr,
    )
    return EXIT_INTERRUPTED


def _attach_display(writer: RunWriter) -> Any:
    """Progress bars and messages on stderr, fed by the same events the run directory gets."""
    from .progress import ProgressDisplay

    display = ProgressDisplay()
    writer.listeners.append(display.handle)
    return display


def _run_each_mode(
    args: argparse.Namespace, writer: RunWriter, dist: Any, load_model: Any
) -> dict[str, Any]:
    """Each mode's results and report, by mode; a mode completed before an interruption is
    kept from its checkpoint, and each one completed now is checkpointed at once."""
    completed: dict[str, Any] = read_json(writer.checkpoint_dir / COMPLETED_MODES) or {}
    _announce_plans(args, writer, [mode for mode in args.modes if mode not in completed])
    for mode in args.modes:
        if mode in completed:
            writer.log(f"{mode}: already complete, kept from before the interruption")
            continue
        module = available_modes()[mode]
        ctx = RunContext(
            options=mode_options(args, mode),
            writer=writer,
            mode=mode,
            dist=dist,
            resume=args.resume is not None,
            _model_loader=load_model if module.NEEDS_PIPELINE else None,
        )
        writer.log(f"{mode}: starting")
        result: ModeResult = module.run(ctx)
        completed[mode] = {
            "results": result.results,
            "report": result.report,
            "sections": result.sections,
        }
        if dist.is_main:
            atomic_write_json(writer.checkpoint_dir / COMPLETED_MODES, completed)
    return completed


def _announce_plans(args: argparse.Namespace, writer: RunWriter, modes: list[str]) -> None:
    """Every mode's planned work before the first starts (its ``planned_work``), so the run's
    overall progress and ETA cover all of it from the start."""
    for mode in modes:
        writer.plan(mode, available_modes()[mode].planned_work(mode_options(args, mode)))


def _assemble_results(
    args: argparse.Namespace, completed: dict[str, Any], load_model: Any
) -> dict[str, Any]:
    results: dict[str, Any] = {
        "run": {"modes": list(args.modes), "model": args.model, "seed": args.seed},
    }
    if "model" in load_model.cache:
        results["model"] = load_model.cache["model"].summary.to_json()
    for mode in args.modes:
        results[mode] = completed[mode]["results"]
        results.update(completed[mode].get("sections") or {})
    return results


def _assemble_report(args: argparse.Namespace, completed: dict[str, Any], path: Path) -> str:
    lines = [
        f"# diffusionscope run `{path.name}`",
        "",
        f"- model: `{args.model}`",
        f"- modes: {', '.join(args.modes)}",
        f"- seed: {args.seed}",
        "",
    ]
    for mode in args.modes:
        section = completed[mode].get("report") or ""
        lines += [f"## {mode}", "", section.strip(), ""]
    lines += ["## Reproduce", "", "```", reproduce_command(args), "```", ""]
    for mode in args.modes:
        protocol = (completed[mode].get("results") or {}).get("protocol")
        if isinstance(protocol, dict) and protocol.get("line"):
            lines.append(f"Protocol ({mode}): {protocol['line']}")
    return "\n".join(lines)


#: Options a reproducing command leaves out: where the run goes, not what it measures.
NOT_REPRODUCED = frozenset({*NOT_SAVED, "runs_root", "name"})


def reproduce_command(args: argparse.Namespace) -> str:
    """The ``run`` command that measures the same thing again: every declared option whose
    value differs from its default (the model, modes and seed always), shell-quoted."""
    import shlex

    words = [PROG, "run"]
    for dest, option in declared_options().items():
        value = getattr(args, dest, None)
        if dest in NOT_REPRODUCED or value is None:
            continue
        if dest == "modes" and not isinstance(value, str):
            value = ",".join(value)
        if value == option.cli_default and dest not in ("model", "modes", "seed"):
            continue
        words += option.as_arguments(value)
    return shlex.join(words)


# --------------------------------------------------------------------------------------------
# Other commands
# --------------------------------------------------------------------------------------------


def list_command(args: argparse.Namespace) -> int:
    root = runs_root(args.runs_root)
    if root.exists() and not root.is_dir():
        raise InputError(f"--runs-root {root}: is a file, not a folder")
    if args.runs_root and not root.exists():
        # Named on purpose: a typo would otherwise read as "no runs yet".
        raise InputError(f"--runs-root {root}: no such folder")
    try:
        runs = list_runs(root, clean_temp_files=True)
    except PermissionError as error:
        raise InputError(f"--runs-root {root}: cannot read ({error.strerror})") from None
    if args.json:
        print(json.dumps([_run_json(info) for info in runs], indent=2, default=str))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    if not runs:
        console.print(Text(f"no runs under {printable(root)}"))
        return EXIT_OK
    if console.width < WIDE_LISTING:
        _print_runs_narrow(console, runs)
        return EXIT_OK
    table = Table()
    # The run id is what ``show`` and ``--resume`` take: never wrapped or cut.
    table.add_column("run", no_wrap=True, min_width=max(len(info.name) for info in runs))
    for name in ("status", "model", "modes", "N", "key numbers"):
        table.add_column(name, overflow="fold")
    for info in runs:
        cells = (
            info.name,
            info.state,
            Path(info.model).name or info.model,
            ",".join(info.modes),
            str(info.num_samples or ""),
            _key_numbers(info),
        )
        # Text, not str: a run name, path or mode in square brackets is shown, not styled.
        table.add_row(*(Text(printable(cell)) for cell in cells))
    console.print(table)
    return EXIT_OK


#: Below this many columns ``runs`` prints two lines a run instead of a table.
WIDE_LISTING = 110


def _key_numbers(info: Any) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in list(info.key_numbers.items())[:4])


def _print_runs_narrow(console: Any, runs: list[Any]) -> None:
    """A few lines a run for 80 columns: the whole id (to paste into ``show`` or
    ``--resume``) and its state; then what it ran and its key numbers, folded to the width."""
    from rich.text import Text

    for info in runs:
        what = " · ".join(
            p
            for p in (
                ",".join(info.modes),
                f"N {info.num_samples}" if info.num_samples else "",
                Path(info.model).name or info.model,
            )
            if p
        )
        console.print(Text(printable(f"{info.name}  {info.state}")), soft_wrap=True)
        detail = "  ".join(p for p in (what, _key_numbers(info)) if p)
        console.print(Text(printable(detail)), overflow="fold", style="dim")
        console.print()


def _run_json(info: Any) -> dict[str, Any]:
    return {
        "path": str(info.path),
        "state": info.state,
        "model": info.model,
        "modes": info.modes,
        "num_samples": info.num_samples,
        "key_numbers": info.key_numbers,
        "message": info.message,
    }


def show_command(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        what = "not a folder" if run_dir.exists() else "no such run directory"
        raise InputError(f"{run_dir}: {what}")
    if not isinstance(read_json(run_dir / CONFIG), dict):
        raise InputError(f"{run_dir}: not a run directory (no readable {CONFIG})")
    info = run_info(run_dir)
    results = read_json(run_dir / RESULTS)
    if args.json:
        print(json.dumps({"state": info.state, "results": results}, indent=2, default=str))
        return EXIT_OK
    from .result_fields import result_rows, results_table

    _say(f"{run_dir}: {info.state}{' (' + info.message + ')' if info.message else ''}")
    metric_events = [e for e in read_events(run_dir) if isinstance(e, MetricEvent)]
    results = results if isinstance(results, dict) else None
    for line in results_table(result_rows(results, metric_events)):
        _say(line)
    if results is None:
        return EXIT_OK
    for section, content in results.items():
        _say(f"[{section}]")
        _print_nested(content, indent=2)
    return EXIT_OK


def _say(line: str) -> None:
    """Print one line of a run's content: prompts, paths and messages are user input."""
    print(printable(line))


def _print_nested(value: Any, indent: int) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item and not _is_flat_list(item):
                _say(f"{pad}{key}:")
                _print_nested(item, indent + 2)
            else:
                _say(f"{pad}{key}: {_short(item)}")
    elif isinstance(value, list):
        for item in value[:20]:
            _print_nested(item, indent) if isinstance(item, dict) else _say(f"{pad}- {item}")
    else:
        _say(f"{pad}{value}")


def _is_flat_list(value: Any) -> bool:
    return isinstance(value, list) and all(not isinstance(v, dict | list) for v in value)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return text if len(text) <= 100 else text[:97] + "..."


def fid_command(args: argparse.Namespace) -> int:
    try:
        from .metrics import fid_command as run_fid
    except ModuleNotFoundError:
        raise InputError("fid: the metrics mode is not available in this build") from None
    return run_fid(args)


def stats_command(args: argparse.Namespace) -> int:
    try:
        from .metrics import stats_command as run_stats
    except ModuleNotFoundError:
        raise InputError("stats: the metrics mode is not available in this build") from None
    return run_stats(args)


def compare_command(args: argparse.Namespace) -> int:
    from .metrics.compare_runs import compare_command as run_compare

    return run_compare(args)


def parse_workbench_args(argv: Sequence[str]) -> argparse.Namespace:
    """The workbench's own options (``diffusionscope tui --model M``), declared with the rest.

    The entry point opens the workbench itself: the engine never imports it.
    """
    return build_parser().parse_args(["tui", *argv])


def main(argv: Sequence[str] | None = None) -> int:
    """The headless commands; ``tui`` and no arguments are the entry point's (the workbench)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        if args.command in ("run", "fid", "stats", "compare"):
            _quiet_libraries()
        if args.command == "run":
            return execute_run(args, given_options(argv))
        handler = {
            "runs": list_command,
            "show": show_command,
            "fid": fid_command,
            "stats": stats_command,
            "compare": compare_command,
        }.get(args.command)
        if handler is None:
            build_parser().print_help(sys.stderr)
            return EXIT_USAGE
        return handler(args)
    except InputError as error:
        return report_input_error(error)
    except BrokenPipeError:
        return _reader_went_away()


def _reader_went_away() -> int:
    """``diffusionscope show RUN | head``: the reader closed the pipe. Say nothing more (as
    ``cat`` does) and point stdout at the null device, so the interpreter's final flush of
    what is still buffered cannot raise again; the exit code is a SIGPIPE death's."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
