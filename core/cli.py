"""The headless commands: ``diffusionscope run|runs|show|fid``.

Every option is validated before a run directory exists, so bad input costs one line on stderr,
exit code 2 and leaves nothing behind. A run writes only through :class:`diffusionscope.core.runs.RunWriter`,
so the TUI, this command and the tests all see the same files.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from diffusionscope.core.errors import (
    EXIT_USAGE,
    PROG,
    InputError,
    RunInterrupted,
    report_input_error,
)
from diffusionscope.core.modes import MODE_NAMES, ModeResult, RunContext, available_modes
from diffusionscope.core.runs import RESULTS, RunWriter, list_runs, read_json, run_info, runs_root

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130
COMPLETED_MODES = "completed_modes.json"


def default_model() -> str:
    from diffusionscope.core.zoo import DIGITS_LDM

    return str(DIGITS_LDM)


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are the project's one-line form with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(message)


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _add_common_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        help="hub id, local diffusers folder, single .safetensors file, or (schedule mode) a "
        "scheduler_config.json (default: the shipped digits-ldm model)",
    )
    parser.add_argument(
        "--modes",
        default=None,
        help=f"comma-separated analysis modes: {', '.join(MODE_NAMES)}",
    )
    parser.add_argument("--runs-root", default=None, help="where run directories go (./runs)")
    parser.add_argument("--name", default=None, help="a name for the run directory")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    parser.add_argument("--dtype", default="auto", help="auto | fp32 | fp16 | bf16")
    parser.add_argument("--seed", type=int, default=0, help="sample i uses seed SEED+i (0)")
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="allow .ckpt/.bin/.pt weights (pickles; read with weights_only=True)",
    )
    parser.add_argument(
        "--single-file-config",
        default=None,
        help="diffusers folder or hub id whose configs a single-file checkpoint is read with",
    )
    parser.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue a run")
    parser.add_argument("--json", action="store_true", help="print final results as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress display on stderr")

    shared = parser.add_argument_group("generation (shared by modes)")
    shared.add_argument("--prompt", default=None, help="the prompt (attention, latent)")
    shared.add_argument("--prompts-file", default=None, help="one prompt a line (metrics)")
    shared.add_argument("--negative-prompt", default=None)
    shared.add_argument("--steps", type=_positive_int, default=None, help="sampler steps")
    shared.add_argument("--guidance-scale", type=float, default=None)
    shared.add_argument("--batch-size", type=_positive_int, default=None)
    shared.add_argument("--height", type=_positive_int, default=None)
    shared.add_argument("--width", type=_positive_int, default=None)
    shared.add_argument("-n", "--num-samples", type=int, default=None, help="samples (metrics)")
    shared.add_argument("--reference", default=None, help="reference image folder or .npz stats")
    shared.add_argument(
        "--features", default=None, help="feature extractor: inception | dinov2 | clip | digits"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Analyse pretrained diffusion models.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    run = sub.add_parser("run", help="run analysis modes headless, writing a run directory")
    _add_common_run_options(run)
    for name, module in available_modes().items():
        group = run.add_argument_group(f"{name} mode", getattr(module, "DESCRIPTION", None))
        module.add_arguments(group)

    runs = sub.add_parser("runs", help="list runs and their status")
    runs.add_argument("--runs-root", default=None)
    runs.add_argument("--json", action="store_true")

    show = sub.add_parser("show", help="print a run's results")
    show.add_argument("run_dir")
    show.add_argument("--json", action="store_true")

    fid = sub.add_parser("fid", help="FID between two image folders or .npz statistics files")
    fid.add_argument("path_a")
    fid.add_argument("path_b")
    fid.add_argument("--features", default="inception")
    fid.add_argument("--inception-weights", default=None)
    fid.add_argument("--batch-size", type=_positive_int, default=50)
    fid.add_argument("--device", default="auto")
    fid.add_argument("--json", action="store_true")

    tui = sub.add_parser("tui", help="open the workbench (the default with no arguments)")
    tui.add_argument("--model", default=None)
    tui.add_argument("--runs-root", default=None)
    return parser


def parse_modes(text: str | None) -> list[str]:
    if not text:
        raise InputError(f"--modes: name at least one of {', '.join(MODE_NAMES)}")
    modes = [m.strip() for m in text.split(",") if m.strip()]
    known = available_modes()
    for mode in modes:
        if mode not in MODE_NAMES:
            raise InputError(f"--modes: unknown mode {mode!r} (known: {', '.join(MODE_NAMES)})")
        if mode not in known:
            raise InputError(f"--modes: the {mode} mode is not available in this build")
    if len(set(modes)) != len(modes):
        raise InputError(f"--modes: a mode is named twice in {text!r}")
    return modes


def validate_run_args(args: argparse.Namespace) -> None:
    """Check everything cheap before anything is written."""
    args.modes = parse_modes(args.modes if isinstance(args.modes, str) else ",".join(args.modes))
    if args.model is None and not getattr(args, "generated", None):
        args.model = default_model()
    if args.num_samples is not None and args.num_samples <= 0:
        raise InputError(f"--num-samples: must be positive, got {args.num_samples}")
    if args.model is not None:
        from diffusionscope.core.loading import classify_source

        kind = classify_source(args.model)
        needs_pipeline = any(available_modes()[m].NEEDS_PIPELINE for m in args.modes)
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
    from diffusionscope.core.loading import resolve_device, resolve_dtype

    resolve_dtype(args.dtype, resolve_device(args.device))
    for mode in args.modes:
        available_modes()[mode].validate(args)
    check_model_support(args)


def check_model_support(args: argparse.Namespace) -> None:
    """Each mode's ``check_model(args, model)``: whether it can analyse the pipeline --model
    names, decided from its configs (read once) before any weight or run directory."""
    from diffusionscope.core.loading import classify_source

    if args.model is None or classify_source(args.model) not in ("folder", "hub"):
        return
    from diffusionscope.core.families import read_model_configs

    model = read_model_configs(args.model)
    for mode in args.modes:
        check = getattr(available_modes()[mode], "check_model", None)
        if check is not None:
            check(args, model)


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    skip = {"command", "resume", "json", "quiet"}
    return {k: v for k, v in vars(args).items() if k not in skip}


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


def _install_stop_signals() -> None:
    """SIGTERM and SIGHUP (a dropped SSH session) stop the run as interrupted and resumable."""

    def stop(signum: int, _frame: Any) -> None:
        raise RunInterrupted(f"stopped by {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, stop)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, stop)


def _model_loader(args: argparse.Namespace, writer: RunWriter) -> Any:
    cache: dict[str, Any] = {}

    def load() -> Any:
        if "model" not in cache:
            from diffusionscope.core.loading import load_pipeline

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


def execute_run(args: argparse.Namespace) -> int:
    from diffusionscope.core.distributed import init_distributed

    resume = args.resume is not None
    if resume:
        run_dir = Path(args.resume)
        config = read_json(run_dir / "config.json")
        if not isinstance(config, dict):
            raise InputError(f"--resume {run_dir}: not a run directory (no readable config.json)")
        if (run_dir / RESULTS).is_file():
            raise InputError(f"--resume {run_dir}: run already finished")
        quiet, as_json = args.quiet, args.json
        args = argparse.Namespace(**{**vars(args), **config})
        args.resume, args.quiet, args.json = str(run_dir), quiet, as_json
        for mode in args.modes:
            available_modes()[mode].validate(args)
    else:
        validate_run_args(args)

    dist = init_distributed(args.device)
    if resume:
        writer = RunWriter.reopen(Path(args.resume), enabled=dist.is_main)
    else:
        name = args.name or "-".join(args.modes)
        root = runs_root(args.runs_root)
        if dist.is_main:
            writer = RunWriter.create(root, name, config_from_args(args))
        path = _share_run_path(writer.path if dist.is_main else None, dist)
        if not dist.is_main:
            writer = RunWriter(path, enabled=False)

    display = None
    if dist.is_main and not args.quiet:
        from diffusionscope.core.progress import ProgressDisplay

        display = ProgressDisplay()
        writer.listeners.append(display.handle)
    writer.start()
    _install_stop_signals()
    writer.status("running", "resumed" if resume else "started")
    if dist.is_main:
        print(f"run directory: {writer.path}", file=sys.stderr)
    load_model = _model_loader(args, writer)
    completed: dict[str, Any] = read_json(writer.checkpoint_dir / COMPLETED_MODES) or {}
    try:
        for mode in args.modes:
            if mode in completed:
                writer.log(f"{mode}: already complete, kept from before the interruption")
                continue
            module = available_modes()[mode]
            ctx = RunContext(
                args=args,
                writer=writer,
                mode=mode,
                dist=dist,
                resume=resume,
                _model_loader=load_model if module.NEEDS_PIPELINE else None,
            )
            writer.log(f"{mode}: starting")
            result: ModeResult = module.run(ctx)
            completed[mode] = {"results": result.results, "report": result.report}
            if dist.is_main:
                from diffusionscope.core.atomic import atomic_write_json

                atomic_write_json(writer.checkpoint_dir / COMPLETED_MODES, completed)
        results = _assemble_results(args, completed, load_model)
        writer.write_report(_assemble_report(args, completed, writer.path))
        writer.write_results(results)
        writer.status("finished")
    except InputError as error:
        writer.status("failed", str(error))
        raise
    except (KeyboardInterrupt, RunInterrupted) as error:
        message = str(error) or "interrupted"
        writer.status("interrupted", message)
        print(f"{PROG}: interrupted ({message}); continue with: {PROG} run --resume {writer.path}",
              file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 -- report the failure in the run, then one line
        writer.log(traceback.format_exc(), level="error")
        writer.status("failed", f"{type(error).__name__}: {error}")
        print(f"{PROG}: run failed: {type(error).__name__}: {error} (traceback in "
              f"{writer.path / 'events.jsonl'})", file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    finally:
        if display is not None:
            display.stop()
        writer.close()
    if dist.is_main:
        if args.json:
            print(json.dumps(results, indent=2, default=str))
        else:
            print(f"finished: {writer.path}", file=sys.stderr)
    return EXIT_OK


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
    return results


def _assemble_report(args: argparse.Namespace, completed: dict[str, Any], path: Path) -> str:
    lines = [f"# diffusionscope run `{path.name}`", "", f"- model: `{args.model}`",
             f"- modes: {', '.join(args.modes)}", f"- seed: {args.seed}", ""]  # fmt: skip
    for mode in args.modes:
        section = completed[mode].get("report") or ""
        lines += [f"## {mode}", "", section.strip(), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Other commands
# --------------------------------------------------------------------------------------------


def list_command(args: argparse.Namespace) -> int:
    runs = list_runs(args.runs_root)
    if args.json:
        print(json.dumps([_run_json(info) for info in runs], indent=2, default=str))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table("run", "status", "model", "modes", "N", "key numbers")
    for info in runs:
        numbers = ", ".join(f"{k}={v:.4g}" for k, v in list(info.key_numbers.items())[:4])
        table.add_row(info.name, info.state, Path(info.model).name or info.model,
                      ",".join(info.modes), str(info.num_samples or ""), numbers)  # fmt: skip
    Console().print(table if runs else f"no runs under {runs_root(args.runs_root)}")
    return EXIT_OK


def _run_json(info: Any) -> dict[str, Any]:
    return {"path": str(info.path), "state": info.state, "model": info.model,
            "modes": info.modes, "num_samples": info.num_samples,
            "key_numbers": info.key_numbers, "message": info.message}  # fmt: skip


def show_command(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not (run_dir / "config.json").is_file():
        raise InputError(f"{run_dir}: not a run directory (no config.json)")
    info = run_info(run_dir)
    results = read_json(run_dir / RESULTS)
    if args.json:
        print(json.dumps({"state": info.state, "results": results}, indent=2, default=str))
        return EXIT_OK
    print(f"{run_dir}: {info.state}{' (' + info.message + ')' if info.message else ''}")
    if results is None:
        for key, value in info.key_numbers.items():
            print(f"  {key} = {value:.6g}")
        return EXIT_OK
    for section, content in results.items():
        print(f"[{section}]")
        _print_nested(content, indent=2)
    return EXIT_OK


def _print_nested(value: Any, indent: int) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item and not _is_flat_list(item):
                print(f"{pad}{key}:")
                _print_nested(item, indent + 2)
            else:
                print(f"{pad}{key}: {_short(item)}")
    elif isinstance(value, list):
        for item in value[:20]:
            _print_nested(item, indent) if isinstance(item, dict) else print(f"{pad}- {item}")
    else:
        print(f"{pad}{value}")


def _is_flat_list(value: Any) -> bool:
    return isinstance(value, list) and all(not isinstance(v, dict | list) for v in value)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return text if len(text) <= 100 else text[:97] + "..."


def fid_command(args: argparse.Namespace) -> int:
    try:
        from diffusionscope.core.metrics import fid_command as run_fid
    except ModuleNotFoundError:
        raise InputError("fid: the metrics mode is not available in this build") from None
    return run_fid(args)


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
        handler = {"run": execute_run, "runs": list_command, "show": show_command,
                   "fid": fid_command}.get(args.command)  # fmt: skip
        if handler is None:
            build_parser().print_help(sys.stderr)
            return EXIT_USAGE
        return handler(args)
    except InputError as error:
        return report_input_error(error)


if __name__ == "__main__":
    sys.exit(main())
