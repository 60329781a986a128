"""Options are declared once (core.options and each mode's OPTIONS); the CLI and the form are
both rendered from the declarations and word every complaint the same way."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from diffusionscope.core.cli import build_parser, main, mode_options
from diffusionscope.core.errors import InputError
from diffusionscope.core.modes import available_modes, declared_options
from diffusionscope.core.options import (
    GENERATION_OPTIONS,
    RUN_OPTIONS,
    Option,
    RunOptions,
    _shown,
    model_name,
)
from diffusionscope.core.zoo import DIGITS_LDM, DIGITS_REFERENCE
from diffusionscope.tui.options import form_options, placeholder


def _run_parser_flags() -> list[str]:
    sub = build_parser()._subparsers._group_actions[0].choices["run"]
    return [flag for action in sub._actions for flag in action.option_strings]


def test_every_declared_option_is_on_the_cli_exactly_once() -> None:
    declared = [*RUN_OPTIONS, *GENERATION_OPTIONS]
    for module in available_modes().values():
        assert all(isinstance(option, Option) for option in module.OPTIONS)
        declared += list(module.OPTIONS)
    flags = _run_parser_flags()
    assert len(flags) == len(set(flags)), "a flag is declared twice"
    for option in declared:
        assert option.flag in flags


@pytest.mark.parametrize(
    ("flag", "text", "complaint"),
    [
        ("--guidance-scale", "nan", "--guidance-scale: expected a finite number, got 'nan'"),
        ("--guidance-scale", "inf", "--guidance-scale: expected a finite number, got 'inf'"),
        ("--steps", "0", "--steps: must be positive, got 0"),
        ("--num-samples", "-5", "--num-samples: must be positive, got -5"),
        ("--height", "tall", "--height: expected a whole number, got 'tall'"),
        ("--dtype", "fp8", "--dtype: choose one of auto, fp32, fp16, bf16, got 'fp8'"),
        ("--frames", "0", "--frames: must be positive, got 0"),
        ("--flow-shift", "-1", "--flow-shift: must be positive, got -1.0"),
    ],
)
def test_cli_and_form_word_a_bad_value_the_same(
    flag: str, text: str, complaint: str, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    code = main(["run", "--modes", "schedule", "--runs-root", str(tmp_path), flag, text])
    assert code == 2
    assert capsys.readouterr().err.strip() == f"diffusionscope: error: {complaint}"
    assert not list(tmp_path.iterdir())
    fields = {
        spec.flag: spec for _, specs in form_options(list(available_modes())) for spec in specs
    }
    declared = {o.flag: o for o in (*RUN_OPTIONS, *GENERATION_OPTIONS)}
    option = fields.get(flag) or declared[flag]
    assert option.check(text) == complaint


def test_run_without_modes_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    assert main(["run", "--runs-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--modes: name at least one of" in err
    assert not list(tmp_path.iterdir())


def _reads(options_type: type) -> set[str]:
    """The options a mode's options type holds, found from its dataclass fields alone (an
    embedded ``generation`` object by its own fields; the run's own options left out)."""
    hints = typing.get_type_hints(options_type)
    reads: set[str] = set()
    for field in dataclasses.fields(options_type):
        kind = hints[field.name]
        if kind is RunOptions:
            continue
        reads |= _reads(kind) if dataclasses.is_dataclass(kind) else {field.name}
    return reads


def test_the_form_shows_exactly_what_each_mode_reads() -> None:
    modes = available_modes()
    for mode, module in modes.items():
        [(_, fields)] = form_options([mode])
        assert [f.dest for f in fields] == list(dict.fromkeys(f.dest for f in fields))
        assert {f.dest for f in fields} == _reads(module.Options), mode
    assert {"batch_size", "features"} <= _reads(modes["latent"].Options)
    assert {"height", "width", "steps"} <= _reads(modes["schedule"].Options)
    assert {"steps", "guidance_scale", "negative_prompt"} <= _reads(modes["attention"].Options)
    # Several modes: each option once, under the first mode that reads it.
    sections = form_options(list(modes))
    shown = [f.dest for _, fields in sections for f in fields]
    assert sorted(shown) == sorted(set().union(*(_reads(m.Options) for m in modes.values())))


def _help_lines() -> dict[str, str]:
    sub = build_parser()._subparsers._group_actions[0].choices["run"]
    return {a.option_strings[-1]: a.help for a in sub._actions if a.option_strings}


def _every_option() -> list[Option]:
    return list(declared_options().values())


def _mode_value(mode: str, model: str | None, dest: str) -> object:
    """What ``mode`` reads for ``dest`` when nothing is given, as the CLI builds its options."""
    argv = ["run", "--modes", mode] + (["--model", model] if model else [])
    options = mode_options(build_parser().parse_args(argv), mode)
    for holder in (options, getattr(options, "generation", None)):
        if holder is not None and dest in {f.name for f in dataclasses.fields(holder)}:
            return getattr(holder, dest)
    raise AssertionError(f"{mode} does not read {dest}")


@pytest.mark.parametrize("option", _every_option(), ids=lambda option: option.dest)
def test_help_form_and_mode_use_one_default(option: Option) -> None:
    """The value a mode reads with nothing given is the declared one, for the shipped model
    and any other; ``--help`` and the form's placeholder show that same value."""
    help_line = _help_lines()[option.flag].replace("%%", "%")
    if option.kind == "bool":
        assert help_line == option.help and option.default is None
        return
    assert help_line.startswith(option.help)
    shown = placeholder(option)
    assert shown == option.shown_default or (not option.shown_default and shown != "")
    if option.shown_default:
        assert help_line.endswith(f" ({shown})")
    modes = available_modes()
    for mode in [m for m, module in modes.items() if option.dest in _reads(module.Options)]:
        for model in ("another/model", str(DIGITS_LDM)):
            name = model_name(model)
            per_model, per_mode = dict(option.per_model), dict(option.per_mode)
            declared = per_model[name] if name in per_model else per_mode.get(mode, option.default)
            value = _mode_value(mode, model, option.dest)
            assert value == (str(declared) if isinstance(declared, Path) else declared)
            if declared is not None:
                assert _shown(declared) in shown, (mode, model)


@pytest.mark.parametrize(
    "option",
    [o for o in _every_option() if o.per_model and o.kind != "bool"],
    ids=lambda option: option.dest,
)
def test_the_form_says_the_loaded_models_own_default(option: Option) -> None:
    """With the shipped model in the model pane, an empty field shows the value a run of that
    model reads (N=500, not the 10000 of any other model); another model sees every default."""
    shown = placeholder(option, str(DIGITS_LDM))
    modes = available_modes()
    [mode, *_] = [m for m, module in modes.items() if option.dest in _reads(module.Options)]
    value = _mode_value(mode, str(DIGITS_LDM), option.dest)
    text = Path(value).name if isinstance(value, str) and Path(value).is_absolute() else value
    expected = ",".join(map(str, text)) if isinstance(text, tuple | list) else str(text)
    assert shown == f"default {expected} for digits-ldm"
    assert placeholder(option, "another/model") == placeholder(option) != shown


def test_no_default_is_written_in_prose() -> None:
    for option in _every_option():
        assert "default" not in option.help.lower(), option.flag
        assert "default" not in option.unset.lower(), option.flag
        assert not any(ch.isdigit() for ch in option.unset), option.flag
        assert not (option.unset and option.default is not None), option.flag
    for module in available_modes().values():
        assert not hasattr(module, "DIGITS_DEFAULTS")
    steps = next(o for o in GENERATION_OPTIONS if o.dest == "steps")
    assert steps.shown_default == "default 25; latent: 20; schedule: 50"
    assert (
        _mode_value("latent", None, "steps") == 20 and _mode_value("metrics", None, "steps") == 25
    )
    assert Option("frames", "frames", kind="int", default=8).shown_default == "default 8"
    assert Option("fast", "skip", kind="bool").shown_default == ""
    assert steps.check("") is None and steps.as_arguments("") == []
    assert Option("fast", "skip", kind="bool").as_arguments(True) == ["--fast"]


def test_the_shipped_model_gets_its_declared_defaults() -> None:
    digits = str(DIGITS_LDM)
    assert _mode_value("metrics", digits, "features") == "digits"
    assert _mode_value("metrics", digits, "num_samples") == 500
    assert _mode_value("metrics", digits, "reference") == str(DIGITS_REFERENCE)
    args = build_parser().parse_args(["run", "--modes", "metrics", "--generated", "x"])
    options = mode_options(args, "metrics")
    assert options.num_samples is None and options.features == "inception"


@pytest.mark.parametrize(
    ("dest", "text", "value"),
    [
        ("device", "cuda:3", "cuda:3"),
        ("device", "CPU", "cpu"),
        ("attention_steps", "4", 4),
        ("attention_steps", "all", "all"),
        ("attention_steps", "0,5,9", (0, 5, 9)),
        ("attention_steps", "5,", (5,)),
        ("strengths", "0,0.5,1", (0.0, 0.5, 1.0)),
        ("seeds", "3,8", (3, 8)),
        ("metrics", "fid,cmmd", ("fid", "cmmd")),
        ("latent_tasks", "all", "all"),
        ("stream_at", "100,200", (100, 200)),
    ],
)
def test_structured_kinds_parse_once(dest: str, text: str, value: object) -> None:
    option = declared_options()[dest]
    assert option.convert(text) == value
    assert option.check_saved(list(value) if isinstance(value, tuple) else value) is None
    assert option.convert(",".join(option.as_arguments(value)[1:])) == value
    # A resumed run's config.json holds the value as JSON (a list), or as text if older.
    assert option.restore(list(value) if isinstance(value, tuple) else value) == value
    if option.kind != "device":
        assert option.restore(text) == value


@pytest.mark.parametrize(
    ("dest", "text", "complaint"),
    [
        (
            "device",
            "cuda:x",
            "--device: expected one of auto, cpu, cuda, cuda:N, mps, got 'cuda:x'",
        ),
        ("device", "tpu", "--device: expected one of auto, cpu, cuda, cuda:N, mps, got 'tpu'"),
        ("attention_steps", "0", "--attention-steps: must be positive, got 0"),
        ("attention_steps", "two", "--attention-steps: expected a count, 'all' or step indices"),
        ("seeds", "3", "--seeds: expected two seeds, got '3'"),
        ("seeds", "3,x", "--seeds: expected a whole number, got 'x'"),
        ("strengths", "1", "--strengths: expected at least two strengths, got '1'"),
        ("metrics", "fid,xyz", "--metrics: unknown metric 'xyz'"),
        ("latent_tasks", "seeds,x", "--latent-tasks: unknown task 'x'"),
    ],
)
def test_structured_kinds_refuse_in_one_line(dest: str, text: str, complaint: str) -> None:
    with pytest.raises(InputError) as error:
        declared_options()[dest].convert(text)
    assert str(error.value).startswith(complaint)


def test_the_form_offers_every_declared_device_and_dtype() -> None:
    from diffusionscope.core.options import DEVICE, DTYPE, FORM_DEVICES

    assert all(DEVICE.check(device) is None for device in FORM_DEVICES)
    assert "cuda:0" in FORM_DEVICES and DTYPE.choices == ("auto", "fp32", "fp16", "bf16")


def test_the_mode_contract_is_a_protocol_every_mode_meets() -> None:
    from diffusionscope.core.modes import Mode

    members = [n for n in vars(Mode) if not n.startswith("_")]
    for name in ("validate", "check_model", "planned_work", "run"):
        assert name in members
    for module in available_modes().values():
        for name in ("DESCRIPTION", "NEEDS_PIPELINE", "OPTIONS", "Options", *members):
            assert hasattr(module, name), (module.__name__, name)
        assert dataclasses.is_dataclass(module.Options)
        assert module.Options.__dataclass_params__.frozen


def test_a_declaration_with_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown option kind"):
        Option("x", "x", kind="number")
    with pytest.raises(InputError, match="--seed: expected a whole number"):
        next(o for o in RUN_OPTIONS if o.dest == "seed").convert("1.5")
