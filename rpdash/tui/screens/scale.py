"""The scale form (``s`` in the endpoints pane, ``:scale``): min and max workers, idle
timeout, scaler type and value of the current endpoint, prefilled with what the control
plane has now.

Every key re-checks the form (:func:`read_form`, through ``ScaleChange.checked()``): a bad
value says why in one line under its field and "Review" stays disabled. Only what differs
from now is sent (the update is sparse). "Review" (or enter) shows before -> after in a
confirm dialog whose focus starts on "No"; "No" comes back to the form, "Apply" closes it
with the change (the dashboard sends it). ``esc`` leaves without changing anything.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Select, Static

from rpdash.api.control.models import EndpointInfo
from rpdash.api.control.scaling import SCALER_TYPES, ScaleChange, scale_text, scaler_value_of
from rpdash.core.errors import InvalidInput
from rpdash.tui.format import inert
from rpdash.tui.scale_lines import preview
from rpdash.tui.screens.confirm import ConfirmScreen

#: the form's number fields: (key, label, ScaleChange field)
NUMBER_FIELDS = (("min", "Min workers", "workers_min"), ("max", "Max workers", "workers_max"),
                 ("idle", "Idle timeout, s", "idle_timeout"), ("value", "Scaler value", "scaler_value"))
#: which field a checked() message is about (its first words), and the words left under
#: the field (the label names it already: the line stays within the dialog)
_MESSAGE_FIELD = (("min workers ", "min"), ("max workers ", "max"), ("idle timeout ", "idle"),
                  ("an endpoint scaling on REQUEST_COUNT", "idle"), ("scaler value ", "value"),
                  ("scaler ", "scaler"))


def _under_field(msg: str) -> tuple[str, str]:
    """(field, short message) for a ``ScaleChange.checked()`` message."""
    if msg.startswith("an endpoint scaling on REQUEST_COUNT"):
        return "idle", "none with REQUEST_COUNT: keep it as it is"
    for start, key in _MESSAGE_FIELD:
        if msg.startswith(start):
            return key, msg.removeprefix(start)
    return "form", msg


def current_values(ep: EndpointInfo) -> dict[str, str]:
    """The form's fields as the endpoint has them now ("" where the API did not say)."""

    def s(v: int | float | None) -> str:
        return "" if v is None else f"{v:g}"

    return {"min": s(ep.workers_min), "max": s(ep.workers_max), "idle": s(ep.idle_timeout_s),
            "value": s(scaler_value_of(ep)), "scaler": ep.scaler_type or ""}


def _number(text: str, fractions: bool) -> int | float:
    """A field's number; ValueError with the words to show."""
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        pass
    if fractions:
        try:
            return float(t)
        except ValueError:
            pass
    raise ValueError(f"not a whole number: {t!r}" if t else "give a number")


def read_form(now: EndpointInfo, values: dict[str, str]) -> tuple[ScaleChange | None, dict[str, str]]:
    """(the change the form asks for, checked; None when there is none or it is bad) and
    what is wrong, by field (``"form"``: the whole form, e.g. nothing changed yet)."""
    was = current_values(now)
    kind = values.get("scaler") or was["scaler"] or None
    errors: dict[str, str] = {}
    asked: dict[str, int | float | None] = {}
    for key, _label, attr in NUMBER_FIELDS:
        text = values.get(key, "")
        if text.strip() == was[key]:
            asked[attr] = None  # as it is: not sent
            continue
        try:
            n = _number(text, fractions=key == "value" and kind == "QUEUE_DELAY")
            ScaleChange(**{attr: n}).checked()  # this field's own range
        except ValueError as exc:
            errors[key] = str(exc)
            continue
        except InvalidInput as exc:
            errors[key] = _under_field(str(exc))[1]
            continue
        asked[attr] = n
    if errors:
        return None, errors
    kind_changed = kind != (now.scaler_type or None)
    if asked["scaler_value"] is not None or kind_changed:
        value = asked["scaler_value"] if asked["scaler_value"] is not None else scaler_value_of(now)
        if kind_changed and asked["scaler_value"] is None:
            errors["value"] = f"{kind} needs its own value: type it"
            return None, errors
        scaler: tuple[str | None, int | float | None] = (kind, value)
    else:
        scaler = (None, None)
    lo = asked["workers_min"] if asked["workers_min"] is not None else now.workers_min
    hi = asked["workers_max"] if asked["workers_max"] is not None else now.workers_max
    if lo is not None and hi is not None and lo > hi:
        if asked["workers_max"] is not None:
            return None, {"max": f"less than min workers ({lo:g})"}
        return None, {"min": f"more than max workers ({hi:g})"}
    change = ScaleChange(asked["workers_min"], asked["workers_max"],  # type: ignore[arg-type]
                         asked["idle_timeout"], *scaler)  # type: ignore[arg-type]
    if change.empty:
        return None, {"form": "nothing changed yet"}
    try:
        return change.checked(), {}
    except InvalidInput as exc:
        key, msg = _under_field(str(exc))
        return None, {key: msg}


class ScaleScreen(ModalScreen["ScaleChange | None"]):
    """The form; dismisses with the confirmed change, or None."""

    DEFAULT_CSS = """
    ScaleScreen { align: center middle; }
    ScaleScreen #dialog { border: thick $accent 60%; }
    ScaleScreen .scale-row { height: 1; }
    ScaleScreen .scale-row Label { width: 17; }
    ScaleScreen .scale-row Input { width: 12; }
    ScaleScreen .scale-row Select { width: 22; }
    ScaleScreen .scale-err { height: 1; color: $error; padding-left: 17; display: none; }
    ScaleScreen .scale-err.-shown { display: block; }
    ScaleScreen #sc-msg { height: 1; color: $text-muted; margin-top: 1; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "review", "Review", show=True),
    ]

    def __init__(self, endpoint_id: str, name: str, now: EndpointInfo) -> None:
        super().__init__()
        self.endpoint_id = endpoint_id
        self.endpoint_name = name
        self.now = now
        #: the checked change the form asks for now (None: nothing, or something is wrong)
        self.change: ScaleChange | None = None
        self.errors: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        was = current_values(self.now)
        title = Text("Scale ", style="bold")
        title.append(inert(self.endpoint_name, one_line=True), style="bold")
        if self.endpoint_name != self.endpoint_id:
            title.append(f" ({inert(self.endpoint_id, one_line=True)})", style="dim")
        with Vertical(id="dialog"):
            yield Static(title, id="dialog-title")
            yield Static(Text(f"now: {scale_text(self.now)}"), id="dialog-body")
            for key, label, _attr in NUMBER_FIELDS[:3]:
                yield from self._row(key, label, was[key])
            with Horizontal(classes="scale-row"):
                yield Label("Scaler")
                yield Select([(t, t) for t in SCALER_TYPES], value=was["scaler"] or Select.NULL,
                             allow_blank=not was["scaler"], compact=True, id="sc-scaler")
            yield Static(id="sc-scaler-err", classes="scale-err")
            yield from self._row("value", NUMBER_FIELDS[3][1], was["value"])
            yield Static(id="sc-msg")
            with Horizontal(id="dialog-buttons"):
                yield Button("Cancel", id="no")
                yield Button("Review", id="yes", variant="primary", disabled=True)
        yield Footer(compact=True)

    def _row(self, key: str, label: str, value: str) -> ComposeResult:
        with Horizontal(classes="scale-row"):
            yield Label(label)
            yield Input(value, id=f"sc-{key}", compact=True, restrict=r"[0-9.\-]*", max_length=8)
        yield Static(id=f"sc-{key}-err", classes="scale-err")

    def on_mount(self) -> None:
        for field in self.query(Input):
            field.cursor_blink = False  # no idle repaint
        self.query_one("#sc-min", Input).focus()
        self._check()

    def values(self) -> dict[str, str]:
        out = {key: self.query_one(f"#sc-{key}", Input).value for key, _l, _a in NUMBER_FIELDS}
        kind = self.query_one("#sc-scaler", Select).value
        out["scaler"] = "" if kind is Select.NULL else str(kind)
        return out

    def _check(self) -> None:
        self.change, self.errors = read_form(self.now, self.values())
        for key in ("min", "max", "idle", "scaler", "value"):
            err = self.query_one(f"#sc-{key}-err", Static)
            text = self.errors.get(key, "")
            err.update(Text(text))
            err.set_class(bool(text), "-shown")
        msg = self.errors.get("form", "")
        if self.change is not None:
            msg = preview(self.endpoint_name, self.now, self.change) + "  (enter reviews)"
        self.query_one("#sc-msg", Static).update(Text(msg, no_wrap=True, overflow="ellipsis"))
        self.query_one("#yes", Button).disabled = self.change is None

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._check()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._check()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_review()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "yes":
            self.action_review()
        else:
            self.dismiss(None)

    def action_review(self) -> None:
        """The confirm step: before -> after, focus on "No"."""
        self._check()
        change = self.change
        if change is None:
            self.notify(self.errors.get("form") or next(iter(self.errors.values()), "nothing to send"),
                        severity="warning", timeout=3, markup=False)
            return
        body = Text(preview(self.endpoint_name, self.now, change))
        body.append("\n\nThe change is sent once; the answer is read back and shown.",
                    style="dim")

        def answer(yes: bool | None) -> None:
            if yes:
                self.dismiss(change)

        name = inert(self.endpoint_name, one_line=True)
        self.app.push_screen(ConfirmScreen(f"Apply this scale to {name}?", body,
                                           yes="Apply"), answer)

    def action_cancel(self) -> None:
        self.dismiss(None)
