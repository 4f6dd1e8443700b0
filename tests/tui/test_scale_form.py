"""The scale form's checks and the lines the dashboard says about a scale, without an app:
what :func:`read_form` sends (only what differs), where it puts what is wrong, and the
before -> after wording."""

from __future__ import annotations

import pytest

from rpdash.api.control.models import EndpointInfo
from rpdash.api.control.scaling import ScaleChange, UpdateUncertain
from rpdash.services.scaling import ScaleResult
from rpdash.store.scale_memory import SavedScale
from rpdash.tui.scale_lines import diff_text, drained, preview, read_back, saved_text, uncertain
from rpdash.tui.screens.scale import current_values, read_form

NOW = EndpointInfo("ep1", "llm-chat", workers_min=0, workers_max=3, idle_timeout_s=5,
                   scaler_type="QUEUE_DELAY", scaler_value=4,
                   raw={"scaling": {"type": "QUEUE_DELAY", "queueDelay": 4}})


def form(**changed: str) -> dict[str, str]:
    return {**current_values(NOW), **changed}


def test_the_form_starts_with_the_current_values_and_nothing_to_send():
    assert current_values(NOW) == {"min": "0", "max": "3", "idle": "5", "value": "4",
                                   "scaler": "QUEUE_DELAY"}
    assert read_form(NOW, form()) == (None, {"form": "nothing changed yet"})


def test_only_what_differs_is_sent():
    change, errors = read_form(NOW, form(max="10", min="1"))
    assert errors == {} and change == ScaleChange(1, 10, None, None, None)
    change, _ = read_form(NOW, form(value="0.5"))  # a queue delay may be a fraction
    assert change == ScaleChange(None, None, None, "QUEUE_DELAY", 0.5)
    change, _ = read_form(NOW, form(scaler="REQUEST_COUNT", value="2"))
    assert change == ScaleChange(None, None, None, "REQUEST_COUNT", 2)


@pytest.mark.parametrize(("changed", "field", "says"), [
    ({"idle": "0"}, "idle", "must be 1 to 3600 seconds, not 0"),
    ({"idle": "4000"}, "idle", "must be 1 to 3600 seconds, not 4000"),
    ({"max": ""}, "max", "give a number"),
    ({"min": "1.5"}, "min", "not a whole number: '1.5'"),
    ({"min": "-1"}, "min", "must be a whole number >= 0, not -1"),
    ({"min": "5"}, "min", "more than max workers (3)"),
    ({"max": "0", "min": "0"}, None, None),
    ({"min": "2", "max": "1"}, "max", "less than min workers (2)"),
    ({"value": "0"}, "value", "must be at least 1"),
    ({"scaler": "REQUEST_COUNT"}, "value", "REQUEST_COUNT needs its own value: type it"),
    ({"scaler": "REQUEST_COUNT", "value": "2", "idle": "9"}, "idle",
     "none with REQUEST_COUNT: keep it as it is"),
    ({"scaler": "REQUEST_COUNT", "value": "1.5"}, "value", "not a whole number: '1.5'"),
])
def test_a_bad_value_is_said_under_its_field(changed, field, says):
    change, errors = read_form(NOW, form(**changed))
    if field is None:
        assert errors == {} and change is not None
        return
    assert change is None and errors == {field: says}
    assert len(says) <= 51  # one line under the field, within the dialog


def test_before_after_names_only_what_changes():
    after = EndpointInfo("ep1", "llm-chat", workers_min=1, workers_max=10, idle_timeout_s=5,
                         scaler_type="QUEUE_DELAY", scaler_value=4)
    assert diff_text(NOW, after) == "workers 0-3 -> 1-10"
    assert preview("llm-chat", NOW, ScaleChange(idle_timeout=30)) == "llm-chat: idle 5 s -> 30 s"
    assert preview("llm-chat", NOW, ScaleChange(scaler_type="REQUEST_COUNT", scaler_value=2)) == \
        "llm-chat: QUEUE_DELAY 4 -> REQUEST_COUNT 2"
    no_idle = EndpointInfo("ep1", "x", workers_min=0, workers_max=3, scaler_type="REQUEST_COUNT",
                           scaler_value=2)
    assert diff_text(NOW, no_idle) == "idle 5 s -> none, QUEUE_DELAY 4 -> REQUEST_COUNT 2"
    assert diff_text(NOW, NOW) == "unchanged (workers 0-3, idle 5 s, QUEUE_DELAY 4)"


def test_result_lines():
    after = EndpointInfo("ep1", "llm-chat", workers_min=1, workers_max=10, idle_timeout_s=5)
    res = ScaleResult("scale", "ep1", NOW, after)
    assert read_back("llm-chat", res) == "llm-chat: workers 0-3 -> 1-10, QUEUE_DELAY 4 -> scaler none (read back)"
    short = read_back("llm-chat", res, ScaleChange(workers_max=12))
    assert short.endswith("; not all that was asked: it has workers 1-10, idle 5 s")
    zero = EndpointInfo("ep1", "llm-chat", workers_min=0, workers_max=0, idle_timeout_s=5)
    assert drained("llm-chat", ScaleResult("drain", "ep1", NOW, zero, removed=4)) == \
        "drained llm-chat: removed 4 queued jobs, workers 0-0; restore with :restore"
    lost = UpdateUncertain("x", zero)
    assert uncertain("llm-chat", lost) == ("llm-chat: the change may have been applied (the answer "
                                           "was lost); re-read shows workers 0-0, idle 5 s")
    assert "re-reading failed too" in uncertain("llm-chat", UpdateUncertain("x"))
    saved = SavedScale("ep1", "llm-chat", 0.0, 0, 3, 5, "QUEUE_DELAY", 4)
    assert saved_text(saved) == "workers 0-3, idle 5 s, QUEUE_DELAY 4"
    assert "\x1b" not in drained("\x1b[2Jevil", ScaleResult("drain", "ep1", NOW, zero, removed=1))
