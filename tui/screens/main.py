"""The main screen: load a model (left), choose modes and their options, start a run (right)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.strip import Strip
from textual.widgets import (
    Button,
    Checkbox,
    Footer,
    Header,
    Input,
    Label,
    OptionList,
    Select,
    SelectionList,
    Static,
)
from textual.widgets.selection_list import Selection

from ...core.errors import InputError
from ...core.options import DEVICE, DTYPE, FORM_DEVICES, NAME, SEED, Option
from ...core.text import one_line
from .. import settings
from ..options import build_arguments, field_for_error, form_options, placeholder
from ..start_checks import error_field, is_model_error, path_problem, quick_check
from ..text import literal, short_model, styled

#: A Select's "nothing chosen" value: ``Select.NULL`` since Textual 2 (``BLANK`` before, and
#: ``BLANK`` is the ``allow_blank`` flag's default, False, since).
NO_SELECTION = Select.NULL if hasattr(Select, "NULL") else Select.BLANK
#: Run-level options the form offers under every mode selection (model, device and dtype have
#: their own widgets on the left).
RUN_FORM_OPTIONS = (SEED, NAME)


class ModelPane(Vertical):
    """Model source, device, dtype, recent models and the loaded model's summary."""

    def __init__(self, model: str | None) -> None:
        super().__init__(id="model-pane")
        self.initial = model or settings.default_model() or ""

    def compose(self) -> ComposeResult:
        yield Label("Model", classes="pane-title")
        yield Input(
            self.initial,
            placeholder="hub id, diffusers folder or .safetensors file",
            id="model-source",
            compact=True,
        )
        yield Static("", id="model-error")
        with Horizontal(classes="button-row"):
            yield Button("Browse ^o", id="browse", compact=True)
            yield Button("Load ^l", id="load", variant="primary", compact=True)
        with Horizontal(classes="select-row"):
            yield Label("device", classes="select-label")
            yield Select(
                [(d, d) for d in FORM_DEVICES],
                value=DEVICE.default,
                allow_blank=False,
                id="device",
                compact=True,
            )
            yield Label("dtype", classes="select-label")
            yield Select(
                [(d, d) for d in DTYPE.choices],
                value=DTYPE.default,
                allow_blank=False,
                id="dtype",
                compact=True,
            )
        yield Label("Recent models", classes="section-title")
        yield OptionList(
            *(literal(m, one_line=True) for m in settings.recent_models()), id="recent"
        )
        yield Static(
            "not loaded: press Load (ctrl+l) to read the model's configs", id="model-summary"
        )

    @property
    def source(self) -> str:
        return self.query_one("#model-source", Input).value.strip()

    @property
    def device(self) -> str:
        return str(self.query_one("#device", Select).value)

    @property
    def dtype(self) -> str:
        return str(self.query_one("#dtype", Select).value)

    @on(OptionList.OptionSelected, "#recent")
    def _use_recent(self, event: OptionList.OptionSelected) -> None:
        self.query_one("#model-source", Input).value = str(event.option.prompt)


class ModeList(SelectionList[str]):
    """The mode list, with a tick in a selected mode's box and an empty box otherwise:
    selection must not be told by colour alone."""

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        segments = list(strip)
        try:
            selection = self.get_option_at_index(self.scroll_offset.y + y)
        except Exception:  # noqa: BLE001 -- past the last option: the line as drawn
            return strip
        if len(segments) < 3:
            return strip
        mark = "✓" if selection.value in self.selected else " "
        text, style, control = segments[1]
        segments[1] = type(segments[1])(mark, style, control)
        return Strip(segments, strip.cell_length)


class FormScroll(VerticalScroll, can_focus=False):
    """The options form: its fields take focus (and scroll into view), the container does not,
    so an empty form is no Tab stop."""

    def on_resize(self, event: events.Resize) -> None:
        """The form shrinks when the help line under it grows (or the terminal does): the
        field being typed into stays in view."""
        focused = self.screen.focused
        if focused is not None and self in focused.ancestors:
            field = next((a for a in focused.ancestors if isinstance(a, OptionField)), focused)
            self.call_after_refresh(self.scroll_to_widget, field, animate=False, immediate=True)


class TickBox(Checkbox):
    """A checkbox whose box holds a tick when on and nothing when off (not colour alone)."""

    @property
    def BUTTON_INNER(self) -> str:
        return "✓" if self.value else " "


class OptionField(Vertical):
    """One option: its flag, an input whose empty state shows the default it stands for, and
    under them its inline validation message. Its full help shows below the form when it has
    focus (``#field-help``), never cut to fit a placeholder."""

    def __init__(self, spec: Option, value: Any, model: str | None = None) -> None:
        super().__init__(id=f"field-{spec.dest}", classes="option-field")
        self.spec = spec
        self.initial = value
        self.model = model  # the model pane's, whose own defaults the placeholder shows

    def compose(self) -> ComposeResult:
        with Horizontal(classes="field-row"):
            yield Label(literal(self.spec.label), classes="field-label")
            yield self._input()
        yield Static("", classes="field-error")

    @property
    def help_text(self) -> str:
        return f"{self.spec.flag}: {self.spec.help_text}"

    def _input(self) -> Input | Select | Checkbox:
        spec = self.spec
        widget: Input | Select | Checkbox
        if spec.kind == "bool":
            widget = TickBox("", bool(self.initial), id=f"opt-{spec.dest}", compact=True)
        elif spec.kind == "choice":
            options = [(c, c) for c in spec.choices]
            value = self.initial if self.initial in spec.choices else NO_SELECTION
            widget = Select(
                options,
                value=value,
                prompt=placeholder(spec, self.model),
                id=f"opt-{spec.dest}",
                compact=True,
            )
        else:
            widget = Input(
                as_text(spec, self.initial),
                placeholder=placeholder(spec, self.model),
                id=f"opt-{spec.dest}",
                compact=True,
            )
        widget.tooltip = self.help_text
        return widget

    def show_defaults_for(self, model: str | None) -> None:
        """Placeholders for ``model``, the one just loaded."""
        self.model = model
        widget = self.query_one(f"#opt-{self.spec.dest}")
        if isinstance(widget, Input):
            widget.placeholder = placeholder(self.spec, model)
        elif isinstance(widget, Select):
            widget.prompt = placeholder(self.spec, model)

    @property
    def value(self) -> Any:
        widget = self.query_one(f"#opt-{self.spec.dest}")
        if isinstance(widget, Checkbox):
            return widget.value
        if isinstance(widget, Select):
            return None if widget.value == NO_SELECTION else widget.value
        text = widget.value  # type: ignore[attr-defined]
        if self.spec.repeat:  # several values, one per "--flag value", typed apart by ";"
            return [part.strip() for part in text.split(REPEAT_SEPARATOR) if part.strip()]
        return text

    def set(self, value: Any) -> None:
        """Show ``value`` (a saved configuration's) as the field would hold it when typed."""
        widget = self.query_one(f"#opt-{self.spec.dest}")
        if isinstance(widget, Checkbox):
            widget.value = bool(value)
        elif isinstance(widget, Select):
            widget.value = value if value in self.spec.choices else NO_SELECTION
        else:
            widget.value = as_text(self.spec, value)  # type: ignore[attr-defined]

    def show_error(self, message: str | None) -> None:
        self.query_one(".field-error", Static).update(literal(message or ""))
        self.set_class(bool(message), "-invalid")

    def check(self) -> str | None:
        value = self.value
        message = None
        for each in value if isinstance(value, list) else [value]:
            if isinstance(each, str):
                # A path is checked as it is typed too, like a number.
                message = self.spec.check(each) or path_problem(self.spec, each)
            if message:
                break
        self.show_error(message)
        return message


#: How a form field holds several values of a repeatable option (``--sweep A=1,2 --sweep B=3``
#: is typed ``A=1,2; B=3``): commas already separate the values of one.
REPEAT_SEPARATOR = ";"


def as_text(spec: Option, value: Any) -> str:
    """A configuration's value as its field shows it (a repeatable option's list joined)."""
    if spec.repeat and isinstance(value, list | tuple):
        return f"{REPEAT_SEPARATOR} ".join(spec.as_text(v) for v in value)
    return spec.as_text(value)


def recent_config_options(recent: list[dict[str, Any]]) -> list[tuple[Content, int]]:
    """One line per remembered configuration: modes, model, then the options it set."""
    lines = []
    for index, config in enumerate(recent):
        skip = {"modes", "model", "device", "dtype"}
        options = " ".join(f"{k.replace('_', '-')}={v}" for k, v in config.items() if k not in skip)
        modes = ",".join(config.get("modes") or [])
        model = short_model(str(config.get("model") or "")) or "?"
        lines.append((literal(f"{modes} · {model} {options}".strip(), one_line=True), index))
    return lines


class ModePane(Vertical):
    """The mode selection list and the form of the selected modes' options."""

    def __init__(self, modes: dict[str, str]) -> None:
        super().__init__(id="mode-pane")
        self.modes = modes
        self.values: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        yield Select(
            recent_config_options(settings.recent_configs()),
            prompt="recent configurations",
            id="recent-configs",
            compact=True,
        )
        yield Label("Modes  (space ticks ✓)", classes="pane-title", id="modes-title")
        yield ModeList(
            *(Selection(f"{name:<10} {desc}", name) for name, desc in self.modes.items()),
            id="modes",
        )
        yield FormScroll(Static("select one or more modes above", classes="hint"), id="mode-form")
        yield Static("", id="field-help")
        yield Static("", id="form-error")
        yield Button("Start run ^s", id="start", variant="success", compact=True)

    @property
    def selected(self) -> list[str]:
        chosen = set(self.query_one("#modes", SelectionList).selected)
        return [name for name in self.modes if name in chosen]  # keep the canonical order

    @property
    def fields(self) -> list[OptionField]:
        return list(self.query(OptionField))

    @property
    def specs(self) -> list[Option]:
        return [f.spec for f in self.fields]

    def remember_values(self) -> None:
        for field in self.fields:
            self.values[field.spec.dest] = field.value

    def fill(
        self, values: dict[str, Any], modes: list[str], then: Callable[[], None] | None = None
    ) -> None:
        """Select ``modes`` and fill every field from ``values`` (a run's configuration); call
        ``then`` once the filled form is in place (to put the cursor in it: not before, or
        what is typed next would go to a field about to be replaced)."""
        chosen = [mode for mode in modes if mode in self.modes]
        self.values.update(values)
        selection = self.query_one("#modes", SelectionList)
        if set(selection.selected) == set(chosen):
            for field in self.fields:
                field.set(values.get(field.spec.dest))
            if then is not None:
                self.call_after_refresh(then)
            return
        # One rebuild for the whole selection (not one per mode ticked), then ``then``.
        with selection.prevent(SelectionList.SelectedChanged):
            selection.deselect_all()
            for mode in chosen:
                selection.select(mode)
        self._filling = True
        self.call_later(self._rebuild_then, then)

    async def _rebuild_then(self, then: Callable[[], None] | None) -> None:
        await self.rebuild_form()
        if then is not None:
            self.call_after_refresh(then)

    @on(SelectionList.SelectedChanged, "#modes")
    async def rebuild_form(self) -> None:
        chosen = self.selected
        self.query_one("#modes-title", Label).update(
            f"Modes  ✓ {', '.join(chosen)}" if chosen else "Modes  (space ticks ✓)"
        )
        if not getattr(self, "_filling", False):
            self.remember_values()  # a filled configuration's values win over the old fields
        self._filling = False
        form = self.query_one("#mode-form", VerticalScroll)
        await form.remove_children()
        modes = self.selected
        if not modes:
            await form.mount(Static("select one or more modes above", classes="hint"))
            return
        widgets: list[Any] = []
        for mode, specs in [*form_options(modes), ("run", list(RUN_FORM_OPTIONS))]:
            widgets.append(Label(f"{mode} options", classes="section-title"))
            if not specs:
                widgets.append(Static("no options", classes="hint"))
            model = getattr(self.screen, "model_pane", None)
            model = model.source if model is not None else None
            widgets += [OptionField(spec, self.values.get(spec.dest), model) for spec in specs]
        await form.mount_all(widgets)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """The focused field's whole help, under the form."""
        field = next(
            (a for a in event.widget.ancestors_with_self if isinstance(a, OptionField)), None
        )
        self.query_one("#field-help", Static).update(literal(field.help_text if field else ""))
        if field is not None:
            # The help line's new height resizes the form after Textual scrolled the widget
            # into view: scroll again once the layout has settled, the whole field (its row
            # and its error line), so the field typed into is always the one on screen.
            self.call_after_refresh(self.scroll_field_into_view, field)

    def scroll_field_into_view(self, field: OptionField) -> None:
        if field.is_attached:
            self.query_one("#mode-form", VerticalScroll).scroll_to_widget(
                field, animate=False, immediate=True
            )

    @on(Input.Changed)
    def _check_field(self, event: Input.Changed) -> None:
        for field in event.input.ancestors:
            if isinstance(field, OptionField):
                field.check()
                break

    def set_value(self, dest: str, value: Any) -> None:
        """Fill one option's field (used by commands and tests)."""
        widget = self.query_one(f"#opt-{dest}")
        widget.value = value  # type: ignore[attr-defined]

    def arguments(self) -> list[str]:
        """The run's mode options as CLI arguments; raises InputError on a bad field.

        The run name is not among them: the app adds ``--name`` itself (:attr:`run_name`)."""
        errors = [message for field in self.fields if (message := field.check())]
        if errors:
            raise InputError(errors[0])
        values = {field.spec.dest: field.value for field in self.fields}
        return build_arguments(values, [s for s in self.specs if s.dest != "name"])

    @property
    def run_name(self) -> str:
        """The name field's text, else the selected modes joined (the CLI's own default)."""
        named = [str(f.value).strip() for f in self.fields if f.spec.dest == "name"]
        return (named[0] if named and named[0] else "") or "-".join(self.selected)

    def show_error(self, message: str) -> None:
        """Put a validation message under its field when it names one, else under the form."""
        dest = field_for_error(message, self.specs) or error_field(message, self.specs)
        if dest is not None:
            self.query_one(f"#field-{dest}", OptionField).show_error(message)
        self.query_one("#form-error", Static).update(literal(message))


class MainScreen(Screen):
    """Model on the left, modes on the right; Start launches the run and opens its live view."""

    BINDINGS = [
        Binding("ctrl+l", "load_model", "Load"),
        Binding("ctrl+o", "browse", "Browse"),
        Binding("ctrl+s", "start_run", "Start"),
        Binding("f4", "live_run", "Live", tooltip="back to the run started last"),
        Binding("f2", "app.runs", "Runs", tooltip="every run: attach, open, resume, compare"),
        Binding("ctrl+q", "app.quit", "Quit"),
    ]

    def __init__(self, model: str | None, modes: dict[str, str]) -> None:
        super().__init__()
        self.initial_model = model
        self.mode_descriptions = modes
        self.loaded_summary: list[str] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main-columns"):
            yield ModelPane(self.initial_model)
            yield ModePane(self.mode_descriptions)
        yield Footer(compact=True)

    @property
    def model_pane(self) -> ModelPane:
        return self.query_one(ModelPane)

    @property
    def mode_pane(self) -> ModePane:
        return self.query_one(ModePane)

    # ---- model --------------------------------------------------------------------------

    @on(Button.Pressed, "#load")
    def action_load_model(self) -> None:
        pane = self.model_pane
        if not pane.source:
            self._summary(
                styled(("model: enter a hub id, folder or .safetensors file", "bold $error"))
            )
            return
        self._summary(literal(f"reading {pane.source} ..."))
        self.load_worker(pane.source, pane.device, pane.dtype)

    @work(thread=True, exclusive=True, group="load-model", name="load-model")
    def load_worker(self, source: str, device: str, dtype: str) -> None:
        """The summary from configs and safetensors headers: torch is never imported here
        (the run process loads the weights; this process only shows what they are)."""
        from ...core.model_info import inspect_model

        try:
            info = inspect_model(source, device, dtype)
        except InputError as error:
            self.app.call_from_thread(self._summary, styled((str(error), "bold $error")))
            return
        except Exception as error:  # noqa: BLE001 -- any failure is shown, never crashes the UI
            text = f"{type(error).__name__}: {error}"
            self.app.call_from_thread(self._summary, styled((text, "bold $error")))
            return
        self.app.call_from_thread(self._loaded, source, info.lines())

    def _loaded(self, source: str, lines: list[str]) -> None:
        self.loaded_summary = lines
        for field in self.mode_pane.fields:  # empty fields now say what they mean for it
            field.show_defaults_for(source)
        self._summary(literal("\n".join(lines)))
        recent = settings.remember_model(source)
        options = self.query_one("#recent", OptionList)
        options.clear_options()
        options.add_options([literal(m, one_line=True) for m in recent])

    def _summary(self, text: Content) -> None:
        self.query_one("#model-summary", Static).update(text)

    @on(Button.Pressed, "#browse")
    def action_browse(self) -> None:
        from .dialogs import FilePickerScreen

        source = Path(self.model_pane.source or ".").expanduser()
        start = (
            source if source.is_dir() else source.parent if source.parent.is_dir() else Path.cwd()
        )

        def picked(path: str | None) -> None:
            if path:
                self.query_one("#model-source", Input).value = path

        self.app.push_screen(
            FilePickerScreen(start.parent if start != Path.cwd() else start), picked
        )

    # ---- runs ---------------------------------------------------------------------------

    def run_arguments(self) -> list[str]:
        modes = self.mode_pane.selected
        if not modes:
            raise InputError("modes: select at least one mode")
        pane = self.model_pane
        argv = ["--modes", ",".join(modes), "--device", pane.device, "--dtype", pane.dtype]
        if pane.source:
            argv += ["--model", pane.source]
        return argv + self.mode_pane.arguments()

    @on(Button.Pressed, "#start")
    def action_start_run(self) -> None:
        """Check what can be checked without torch, then start the run process, which checks
        the rest (devices, reference folders, ...) and refuses in one line if it must: that
        line comes back here, under its field (:meth:`show_refusal`)."""
        self.clear_errors()
        try:
            argv = self.run_arguments()
            quick_check(argv)
        except InputError as error:
            self.show_refusal(str(error))
            return
        self.app.start_run(argv, self.mode_pane.run_name)  # type: ignore[attr-defined]
        self.remember_config()

    def remember_config(self) -> None:
        """This form's values among the recent configurations (offered at the form's top)."""
        pane = self.mode_pane
        pane.remember_values()
        config = {
            "modes": pane.selected,
            "model": self.model_pane.source or None,
            "device": self.model_pane.device,
            "dtype": self.model_pane.dtype,
            **{f.spec.dest: f.value for f in pane.fields if f.value},
        }
        recent = settings.remember_config(config)
        self.query_one("#recent-configs", Select).set_options(recent_config_options(recent))

    def clear_errors(self) -> None:
        self.query_one("#form-error", Static).update("")
        self.query_one("#model-error", Static).display = False
        self.query_one("#model-source", Input).remove_class("-invalid")
        for field in self.mode_pane.fields:
            field.show_error(None)

    def show_refusal(self, message: str) -> None:
        """A one-line refusal (ours or the run process's) under the field it is about."""
        self.clear_errors()
        if is_model_error(message):
            error = self.query_one("#model-error", Static)
            error.update(literal(message))
            error.display = True
            self.query_one("#model-source", Input).add_class("-invalid")
        self.mode_pane.show_error(message)
        self.notify(
            one_line(message), title="run refused", severity="error", timeout=6, markup=False
        )

    def on_screen_resume(self) -> None:
        self.refresh_bindings()  # F4 appears once a run has been started

    # ---- rerun and recent configurations ------------------------------------------------

    def fill_from_config(self, config: dict[str, Any], *, edit: bool) -> None:
        """The form as it was for a run (its ``config.json``): model, device, dtype, modes and
        every option; the name is left empty, so the new run gets a name of its own. ``edit``
        puts the cursor in the first option, else on Start (one key reruns it as it was)."""
        self.clear_errors()
        source = config.get("model")
        self.query_one("#model-source", Input).value = "" if source is None else str(source)
        for key, choices in (("device", FORM_DEVICES), ("dtype", DTYPE.choices)):
            if config.get(key) in choices:
                self.query_one(f"#{key}", Select).value = config[key]
        values = {key: value for key, value in config.items() if key != NAME.dest}
        values[NAME.dest] = None
        modes = [str(m) for m in config.get("modes") or []]
        self.mode_pane.fill(values, modes, then=lambda: self._focus_after_fill(edit))

    def _focus_after_fill(self, edit: bool) -> None:
        fields = self.mode_pane.fields
        if edit and fields:
            fields[0].query_one(f"#opt-{fields[0].spec.dest}").focus()
        else:
            self.query_one("#start", Button).focus()

    @on(Select.Changed, "#recent-configs")
    def _use_recent_config(self, event: Select.Changed) -> None:
        if isinstance(event.value, int):
            recent = settings.recent_configs()
            if event.value < len(recent):
                self.fill_from_config(recent[event.value], edit=True)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """F4 is offered once this session has started a run."""
        if action == "live_run":
            return bool(getattr(self.app, "launched", None))
        return True

    def action_live_run(self) -> None:
        self.app.open_last_run()  # type: ignore[attr-defined]
