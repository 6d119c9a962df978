"""``check_run_kwargs``: a manual run's keyword arguments, checked against the registered
task's signature before a message is sent (and again by the runner)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from orchestrator.engines.celery.registered import RunArgumentsInvalid, check_run_kwargs


def backup(kind: str, keep: int = 7) -> None:
    """A task function: one required and one optional argument."""


def anything(**options: object) -> None:
    """A task function that takes any keyword argument."""


APP = SimpleNamespace(
    tasks={"t.backup": SimpleNamespace(run=backup), "t.any": SimpleNamespace(run=anything)}
)
TASK = {"kind": "task", "task": "t.backup"}


def test_check_run_kwargs__laid_over_the_registered_ones() -> None:
    """The operator's arguments replace the job's own of the same name; the rest stay."""
    merged = check_run_kwargs(APP, TASK, [], {"kind": "hourly", "keep": 3}, {"kind": "daily"})
    assert merged == {"kind": "daily", "keep": 3}


def test_check_run_kwargs__unknown_name_is_refused_with_the_accepted_ones() -> None:
    """A name the task does not take is refused, saying which it takes."""
    with pytest.raises(RunArgumentsInvalid) as caught:
        check_run_kwargs(APP, TASK, [], {"kind": "hourly"}, {"kinds": "daily"})
    assert str(caught.value) == "task t.backup takes no argument 'kinds' (it takes: kind, keep)"


def test_check_run_kwargs__a_required_argument_left_out_is_refused() -> None:
    """The call must bind: a required argument missing from both is an error."""
    with pytest.raises(RunArgumentsInvalid, match="missing a required argument: 'kind'"):
        check_run_kwargs(APP, TASK, [], {}, {"keep": 1})


def test_check_run_kwargs__a_task_taking_any_keyword_takes_these() -> None:
    """``**kwargs`` in the signature accepts any name."""
    body = {"kind": "task", "task": "t.any"}
    assert check_run_kwargs(APP, body, [], {}, {"x": 1}) == {"x": 1}


@pytest.mark.parametrize(
    ("body", "extra", "message"),
    [
        ({"kind": "sql", "sql": "SELECT 1"}, {}, "task jobs only; this job's body is sql"),
        ({"kind": "command", "argv": ["ls"]}, {}, "task jobs only; this job's body is command"),
        (TASK, ["daily"], "must be a JSON object"),
        ({"kind": "task", "task": "t.gone"}, {}, "no task 't.gone' is registered"),
    ],
)
def test_check_run_kwargs__refusals(body: dict, extra: object, message: str) -> None:
    """SQL and programs take no arguments (nothing can choose what runs); the arguments are
    an object; the task must be registered."""
    with pytest.raises(RunArgumentsInvalid, match=message):
        check_run_kwargs(APP, body, [], {}, extra)
