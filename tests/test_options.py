"""Options are declared once (core.options and each mode's OPTIONS); the CLI and the form are
both rendered from the declarations and word every complaint the same way."""

from __future__ import annotations

import pytest

from diffusionscope.core.cli import build_parser, main
from diffusionscope.core.errors import InputError
from diffusionscope.core.modes import available_modes
from diffusionscope.core.options import GENERATION_OPTIONS, RUN_OPTIONS, Option
from diffusionscope.tui.options import form_options


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


def test_form_shows_each_mode_the_shared_options_it_reads() -> None:
    for mode, specs in form_options([m for m in available_modes()]):
        shared = [o.dest for o in GENERATION_OPTIONS if mode in o.modes]
        own = [o.dest for o in available_modes()[mode].OPTIONS]
        assert [s.dest for s in specs] == [d for d in shared + own if d in {s.dest for s in specs}]
    for mode in available_modes():
        [(_, specs)] = form_options([mode])
        assert {s.dest for s in specs} == {
            *(o.dest for o in GENERATION_OPTIONS if mode in o.modes),
            *(o.dest for o in available_modes()[mode].OPTIONS),
        }


def test_an_empty_field_says_what_it_stands_for() -> None:
    steps = next(o for o in GENERATION_OPTIONS if o.dest == "steps")
    assert steps.shown_default == "default 25 (latent: 20)"
    assert Option("frames", "frames", kind="int", default=8).shown_default == "default 8"
    assert Option("fast", "skip", kind="bool").shown_default == ""
    assert steps.check("") is None and steps.as_arguments("") == []
    assert Option("fast", "skip", kind="bool").as_arguments(True) == ["--fast"]


def test_a_declaration_with_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown option kind"):
        Option("x", "x", kind="number")
    with pytest.raises(InputError, match="--seed: expected a whole number"):
        next(o for o in RUN_OPTIONS if o.dest == "seed").convert("1.5")
