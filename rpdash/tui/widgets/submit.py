"""The submit form: endpoint, JSON input with live validation, mode, policy, webhook.

The form only builds a request and checks it locally; the app submits it through the
Session (which validates again before any request). Bad JSON never leaves the form: the
message under the editor says where the problem is (line and column) and ctrl+s refuses.
"""

from __future__ import annotations

import json
import re
from functools import partial
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Checkbox, Input, Label, Select, Static, TextArea
from textual.worker import Worker, WorkerState

from rpdash.core.models import Policy
from rpdash.tui.actions import PANE_KEYS, ReadonlyAware, bindings_for
from rpdash.tui.format import inert
from rpdash.tui.widgets.keyorder import InOrderKeys
from rpdash.tui.widgets.payload import (
    ASYNC_CHECK_BYTES,
    ASYNC_CHECK_LINES,
    DEBOUNCE_S,
    HIGHLIGHT_MAX_BYTES,
    HIGHLIGHT_MAX_LINES,
    HeldPayload,
    JsonCheck,
    check_json,
    formatted,
    too_big,
)

DEFAULT_INPUT = '{\n  "prompt": "hello"\n}\n'
MODES = (("run", "run"), ("runsync", "runsync"), ("stream", "stream"))

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration_ms(text: str) -> int | None:
    """``"90s"``, ``"10m"``, ``"2h"``, ``"1d"``, ``"5000"`` (plain numbers are milliseconds,
    as in the API). Empty means "not set". Raises ValueError with a readable message."""
    if not text.strip():
        return None
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{text.strip()!r} is not a duration (try 90s, 10m, 2h or 600000)")
    value = float(m.group(1)) * _UNIT_MS[(m.group(2) or "ms").lower()]
    return int(value)


def syntax_available() -> bool:
    """Whether TextArea can highlight JSON here (needs tree-sitter and tree-sitter-json)."""
    try:
        from textual._tree_sitter import get_language  # noqa: PLC0415

        return get_language("json") is not None
    except Exception:  # noqa: BLE001
        return False


class JsonEditor(InOrderKeys, TextArea):
    """The input editor: alt+1-alt+4 (``¡`` ``™`` ``£`` ``¢`` from most terminals) switch
    panes instead of being typed into the JSON; keys typed in one burst apply in order.

    A paste too big to edit (see :mod:`rpdash.tui.widgets.payload`) is handed to the form
    (:class:`BigPaste`) instead of being inserted; while the form holds one, the editor is
    a read-only preview and backspace/delete ask the form to drop it (:class:`DropHeld`)."""

    class BigPaste(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class DropHeld(Message):
        pass

    held = False

    async def _on_key(self, event: events.Key) -> None:
        if self.held and event.key in ("backspace", "delete"):
            event.stop()
            event.prevent_default()
            self.post_message(self.DropHeld())
        elif self.held and self.check_consume_key(event.key, event.character):
            event.stop()  # typed into the preview: nothing (and never a dashboard key)
            event.prevent_default()

    async def _on_paste(self, event: events.Paste) -> None:
        if self.held or too_big(event.text):
            event.stop()
            event.prevent_default()
            self.post_message(self.BigPaste(event.text))
        elif len(event.text) > HIGHLIGHT_MAX_BYTES:
            self.language = None  # before the insert: one highlight pass costs seconds

    def _inserts_itself(self, event: events.Key) -> bool:
        if not self.read_only and (event.key == "enter" or (
                self.tab_behavior == "indent" and event.key in ("tab", "escape"))):
            return True
        return super()._inserts_itself(event)

    def check_consume_key(self, key: str, character: str | None = None) -> bool:
        if key in PANE_KEYS:
            return False
        if self.held:  # a read-only preview, but typing into it must not quit the app
            return bool(character and character.isprintable())
        return super().check_consume_key(key, character)


class FieldInput(InOrderKeys, Input):
    """A one-line field of the form; leaves the pane keys to the bindings too."""

    def check_consume_key(self, key: str, character: str | None) -> bool:
        return key not in PANE_KEYS and super().check_consume_key(key, character)


@dataclass(slots=True)
class SubmitSpec:
    endpoint_id: str
    input: dict[str, Any]
    mode: str
    policy: Policy | None
    webhook: str | None


class SubmitForm(ReadonlyAware, Vertical):
    """Build a job request; posts :class:`SubmitForm.Submitted` on ctrl+s."""

    BINDINGS: list[BindingType] = bindings_for("submit")  # type: ignore[assignment]

    class Submitted(Message):
        def __init__(self, spec: SubmitSpec) -> None:
            super().__init__()
            self.spec = spec

    class RecentRequested(Message):
        pass

    class LeaveRequested(Message):
        pass

    def __init__(
        self,
        endpoints: list[str],
        *,
        names: Mapping[str, str] | None = None,
        highlight: bool = True,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self._endpoints = list(endpoints)
        self._names = dict(names or {})
        self._highlight = highlight
        self.error: str | None = None  # the current validation message (None: valid)
        self.busy = False
        self._held: HeldPayload | None = None  # a payload too big for the editor
        self._gen = 0  # bumped by every change of the JSON; the newest check wins
        self._json: JsonCheck | None = None  # the verdict on the current JSON (None: pending)
        self._size_hint = 0  # characters in the JSON at the last check
        self._check_timer: Any = None
        self._syntax_ready = False
        self._hint_shown = ""

    def compose(self) -> ComposeResult:
        opts = [(self._label(e), e) for e in self._endpoints]
        with Horizontal(classes="sf-row"):
            yield Label("endpoint ", classes="sf-label")
            yield Select(opts, allow_blank=not opts, compact=True, id="sf-endpoint",
                         prompt="(no endpoint)")
            yield Label(" mode ", classes="sf-label")
            yield Select(MODES, allow_blank=False, value="run", compact=True, id="sf-mode")
        # highlighting is switched on after the first frame (see on_mount): building the
        # tree-sitter query costs ~30 ms, which the dashboard's first paint need not wait for
        yield JsonEditor(DEFAULT_INPUT, id="sf-input", tab_behavior="focus",
                       show_line_numbers=True, soft_wrap=False)
        yield Static("", id="sf-msg")
        with Horizontal(classes="sf-row"):
            yield Label("timeout ", classes="sf-label")
            yield FieldInput(placeholder="10m", compact=True, id="sf-timeout",
                        tooltip="policy.executionTimeout: 90s, 10m, 2h or milliseconds")
            yield Label(" ttl ", classes="sf-label")
            yield FieldInput(placeholder="24h", compact=True, id="sf-ttl",
                        tooltip="policy.ttl: the job's whole life, 10s to 7d")
            yield Checkbox("low prio", id="sf-lowprio", tooltip="policy.lowPriority: does not scale workers up")
        with Horizontal(classes="sf-row"):
            yield Label("webhook ", classes="sf-label")
            yield FieldInput(placeholder="https://… (optional)", compact=True, id="sf-webhook")
        yield Static(self._hint(), id="sf-hint")

    def _hint(self) -> Text:
        keys = [("^s", "submit"), ("^o", "recent"), ("^f", "format"), ("esc", "back")]
        note = ""
        if self._held is not None:
            note = "payload held, preview only · "
            keys[1] = ("⌫", "drop it")
        elif self._highlight and self._syntax_ready and self.editor.language is None:
            note = "highlighting off (large input) · "
        parts: list[Any] = [(note, "italic"), *(
            part for i, (key, words) in enumerate(keys)
            for part in ((key, "bold"), f" {words}" + (" · " if i < len(keys) - 1 else "")))]
        return Text.assemble(*parts, style="dim", overflow="ellipsis", no_wrap=True)

    def _refresh_hint(self) -> None:
        hint = self._hint()
        if not getattr(self.app, "readonly", False) and hint.plain != self._hint_shown:
            self._hint_shown = hint.plain
            self.query_one("#sf-hint", Static).update(hint)

    def _label(self, endpoint_id: str) -> str:
        name = self._names.get(endpoint_id)
        return inert(f"{name} ({endpoint_id})" if name else endpoint_id, one_line=True)

    def on_mount(self) -> None:
        self.validate_input()
        if self._highlight:
            self.call_after_refresh(self._enable_highlight)
        if getattr(self.app, "readonly", False):
            self.query_one("#sf-hint", Static).update(
                Text("read-only: no submit (edit only)", style="italic yellow"))

    def _enable_highlight(self) -> None:
        self._syntax_ready = syntax_available()
        self._sync_highlight()

    def _sync_highlight(self) -> None:
        """JSON highlighting on while the input is small (Textual rebuilds the whole highlight
        map after every edit: seconds per key at 1 MB), off above it; the hint says so."""
        ed = self.editor
        small = (self._held is None and self._size_hint <= HIGHLIGHT_MAX_BYTES
                 and ed.document.line_count <= HIGHLIGHT_MAX_LINES)
        want = "json" if self._highlight and self._syntax_ready and small else None
        if ed.language != want:
            ed.language = want
        self._refresh_hint()

    # ------------------------------------------------------------------ accessors
    @property
    def editor(self) -> TextArea:
        return self.query_one("#sf-input", TextArea)

    @property
    def endpoint(self) -> str | None:
        v = self.query_one("#sf-endpoint", Select).value
        return v if isinstance(v, str) else None

    def set_endpoint(self, endpoint_id: str) -> None:
        sel = self.query_one("#sf-endpoint", Select)
        if endpoint_id not in self._endpoints:
            self._endpoints.append(endpoint_id)
            sel.set_options([(self._label(e), e) for e in self._endpoints])
        sel.value = endpoint_id

    def set_mode(self, mode: str) -> None:
        if mode in {m for _, m in MODES}:
            self.query_one("#sf-mode", Select).value = mode

    def load_input(self, value: dict[str, Any] | str, *, endpoint_id: str | None = None,
                   mode: str | None = None) -> None:
        """Prefill the editor (``e`` on a job, recent inputs)."""
        text = value if isinstance(value, str) else json.dumps(value, indent=2,
                                                                ensure_ascii=False)
        self._set_json_text(text)
        if endpoint_id:
            self.set_endpoint(endpoint_id)
        if mode:
            self.set_mode(mode)

    def _set_json_text(self, text: str) -> None:
        """The new input: into the editor, or held by the form when too big to edit."""
        ed = self.editor
        self._size_hint = len(text)
        self._held = HeldPayload.of(text) if too_big(text) else None
        ed.held = ed.read_only = self._held is not None
        self._sync_highlight()  # before the text goes in: highlighting it may cost seconds
        ed.load_text(self._held.preview if self._held else text)
        self._refresh_hint()
        self.validate_input()

    @property
    def held_payload(self) -> str | None:
        """The exact text of a payload held out of the editor (None: the editor has it)."""
        return self._held.text if self._held else None

    def on_json_editor_big_paste(self, event: JsonEditor.BigPaste) -> None:
        event.stop()
        self._set_json_text(event.text)

    def on_json_editor_drop_held(self, event: JsonEditor.DropHeld) -> None:
        event.stop()
        self._set_json_text("")

    # ------------------------------------------------------------------ validation
    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if self._held is None:  # a held payload's preview changes only with the payload
            self.validate_input()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._show_verdict()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self._show_verdict()

    def _json_text(self) -> str:
        return self._held.text if self._held else self.editor.text

    def _big(self) -> bool:
        return (self._held is not None or self._size_hint > ASYNC_CHECK_BYTES
                or self.editor.document.line_count > ASYNC_CHECK_LINES)

    def validate_input(self) -> str | None:
        """The JSON changed: check it (a big one off the UI thread, debounced, the newest
        version winning) and show the first problem under the editor."""
        self._gen += 1
        if self._check_timer is not None:
            self._check_timer.stop()
            self._check_timer = None
        if not self._big():
            self._apply_check(check_json(self.editor.text, self._gen))
            return self.error
        self._json = None
        if self._held is not None:
            self._start_check()  # changes only by a paste or a load: no burst to wait out
        else:
            self._check_timer = self.set_timer(DEBOUNCE_S, self._start_check)
        return self._show_verdict()

    def _start_check(self) -> None:
        self._check_timer = None
        self.run_worker(partial(check_json, self._json_text(), self._gen), thread=True,
                        group="sf-check", exclusive=True, exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.node is not self or worker.state != WorkerState.SUCCESS:
            return
        event.stop()
        if worker.group == "sf-check":
            self._apply_check(worker.result)
        elif worker.group == "sf-format" and isinstance(worker.result, str):
            self._set_json_text(worker.result)

    def _apply_check(self, check: JsonCheck) -> None:
        if check.gen != self._gen:
            return  # an older version of the input: a newer check is coming
        self._json = check
        self._size_hint = check.size
        self._sync_highlight()
        self._show_verdict()

    def _show_verdict(self) -> str | None:
        self.error = self._problem()
        msg = self.query_one("#sf-msg", Static)
        held = self._held
        size = f" · {held.size_text}, {held.lines:,} lines" if held else ""
        if self._json is None and self.error is None:
            msg.update(Text("… checking the JSON" + size, style="dim"))
            msg.remove_class("-error")
        elif self.error is None:
            msg.update(Text("✓ valid JSON object" + size, style="green", no_wrap=True,
                            overflow="ellipsis"))
            msg.remove_class("-error")
        else:
            msg.update(Text("✗ " + inert(self.error, one_line=True) + size, style="bold red"))
            msg.add_class("-error")
        return self.error

    def _problem(self) -> str | None:
        if self._json is not None and self._json.message:
            return self._json.message
        try:
            self._policy()
        except ValueError as exc:
            return str(exc)
        hook = self.query_one("#sf-webhook", Input).value.strip()
        if hook and not hook.lower().startswith(("https://", "http://")):
            return "webhook must be an http(s) URL"
        return None

    def _policy(self) -> Policy | None:
        try:
            timeout = parse_duration_ms(self.query_one("#sf-timeout", Input).value)
        except ValueError as exc:
            raise ValueError(f"timeout: {exc}") from None
        try:
            ttl = parse_duration_ms(self.query_one("#sf-ttl", Input).value)
        except ValueError as exc:
            raise ValueError(f"ttl: {exc}") from None
        low = self.query_one("#sf-lowprio", Checkbox).value
        if timeout is None and ttl is None and not low:
            return None
        try:
            return Policy(executionTimeout=timeout, ttl=ttl, lowPriority=True if low else None)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = {"executionTimeout": "timeout", "ttl": "ttl"}.get(
                str(err["loc"][0]) if err.get("loc") else "", "policy")
            limits = "5 s to 7 days" if field == "timeout" else "10 s to 7 days"
            raise ValueError(f"{field} must be between {limits}") from None

    def build(self) -> SubmitSpec | None:
        """The request in the form, or None (and the message shown) when it is not valid."""
        check = self._json
        if self._held is None or check is None or check.gen != self._gen:
            # the editor's text as it is now (its Changed may still be queued), or a check
            # still running: check it here, once, at submit
            self._gen += 1
            if self._check_timer is not None:
                self._check_timer.stop()
                self._check_timer = None
            self._apply_check(check_json(self._json_text(), self._gen))
        if self._show_verdict() is not None or self._json is None:
            return None
        endpoint = self.endpoint
        if not endpoint:
            self._show("choose an endpoint")
            return None
        mode = self.query_one("#sf-mode", Select).value
        hook = self.query_one("#sf-webhook", Input).value.strip() or None
        return SubmitSpec(
            endpoint_id=endpoint,
            input=self._json.value or {},
            mode=mode if isinstance(mode, str) else "run",
            policy=self._policy(),
            webhook=hook,
        )

    def _show(self, message: str) -> None:
        self.error = message
        msg = self.query_one("#sf-msg", Static)
        msg.update(Text("✗ " + inert(message, one_line=True), style="bold red"))
        msg.add_class("-error")

    def show_result(self, message: str, *, ok: bool) -> None:
        """Show the outcome of the last submit under the editor."""
        msg = self.query_one("#sf-msg", Static)
        msg.update(Text(("✓ " if ok else "✗ ") + inert(message, one_line=True),
                        style="green" if ok else "bold red"))
        msg.set_class(not ok, "-error")

    # ------------------------------------------------------------------ actions
    def action_submit(self) -> None:
        if self.busy:
            self.notify("A submit is already in flight", severity="warning", timeout=3)
            return
        spec = self.build()
        if spec is None:
            self.notify(f"Not submitted: {inert(self.error or 'invalid form', one_line=True)}",
                        severity="error", timeout=5, markup=False)
            return
        self.post_message(self.Submitted(spec))

    def action_recent(self) -> None:
        self.post_message(self.RecentRequested())

    def action_leave(self) -> None:
        self.post_message(self.LeaveRequested())

    def action_format_json(self) -> None:
        if self._big():  # seconds for a big input: in a thread, the result replaces it
            self.run_worker(partial(formatted, self._json_text()), thread=True,
                            group="sf-format", exclusive=True, exit_on_error=False)
            return
        try:
            value = json.loads(self.editor.text)
        except ValueError:
            self.validate_input()
            return
        self.editor.load_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
