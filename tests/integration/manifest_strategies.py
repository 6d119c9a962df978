"""Hypothesis strategies for whole manifests, written the way a careless or hostile user would.

Shared by the property test (``test_validate_property``) and the on-demand fuzz script
(``bench/fuzz_manifests.py``). A manifest draws its jobs from three names, so that applying one
manifest after another changes each job's trigger (cron, interval, one-time, start-up), body
(sql, task, command) and engine (pg_cron, Celery) in every combination. Values mix the ordinary
with the classes that once broke an apply: instants at and beyond Python's ends, written at
extreme offsets, or in the past; NUL and other control characters in any string and key;
integers and floats JSON or PostgreSQL would change; durations and counts too large to hold.
The junk values of the unit property tests (``test_manifest_hypothesis``) are mixed in too.

Instants are drawn relative to ``now`` (the real clock: the CLI validates against it), so a
"future" one is at least a day ahead and stays future for the whole run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import yaml
from hypothesis import strategies as st

from tests.unit.test_manifest_hypothesis import scalars as junk_scalars
from tests.unit.test_manifest_hypothesis import values as junk_values

NAMES = ("alpha", "beta", "gamma")
TASK = "orchestrator.ping"

#: Instants whose handling once broke (or must not break) an engine, as written by hand.
EXTREME_INSTANTS = (
    "0001-01-01T00:00:00+14:00",  # year 0 in UTC
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-14:00",  # year 10000 in UTC
    "9999-12-31T23:59:59.999999+00:00",
    "9999-01-01T00:00:00Z",  # the first instant refused
    "9998-12-31T23:59:59.999999Z",  # the last instant accepted
    "9998-12-31T09:59:59.999999-14:00",  # the same, at the other end of the offsets
    "1970-01-01T00:00:00Z",  # past
    "2020-02-29T12:00:00+05:30",  # past
    "2030-01-01T00:00:00",  # no offset
    "2030-13-01T00:00:00Z",
    "tomorrow",
)
SQL = (
    "SELECT 1",
    "VACUUM ANALYZE",
    "SELECT pg_sleep(0)",
    "DELETE FROM django_session WHERE expire_date < now()",
    "SELECT 'it''s $$ ;-- quoted'",
    "SELECT 1; SELECT 2",
    "SELECT 1 -- \x00",
    "SET ROLE postgres",
    "SELEC 1",
)
ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Pacific/Kiritimati",
    "Nowhere/City",
)
DURATIONS = ("30s", "15m", "2h", 60, "1d", "400d", 0, -5, "10000000000000000000000s", "soon")
HUGE_INTEGERS = (2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**30, 2**31 - 1, 2**31)
FLOATS = (1e15 + 0.5, 1e16, -1.5e300, float("inf"), float("nan"), -0.0, 5e-324)


def _offset(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


def future_instant(now: datetime) -> st.SearchStrategy[str]:
    """An instant a day to ~8,000 years ahead, written with an offset of up to ±14 h."""

    def build(days: int, seconds: int, offset: int) -> str:
        when = now + timedelta(days=days, seconds=seconds)
        try:
            return when.astimezone(_offset(offset)).isoformat()
        except OverflowError:  # at the very end of Python's range: write it in UTC
            return when.astimezone(UTC).isoformat()

    return st.builds(
        build,
        st.one_of(st.integers(1, 400), st.integers(1, 2_900_000)),
        st.integers(0, 86_399),
        st.integers(-14 * 60, 14 * 60),
    )


def instants(now: datetime) -> st.SearchStrategy[str]:
    return st.one_of(future_instant(now), future_instant(now), st.sampled_from(EXTREME_INSTANTS))


#: Text with control characters (NUL included) and any non-surrogate code point.
hostile_text = st.text(
    st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=("Cs",)),
    max_size=12,
)
plain_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)

json_numbers = st.one_of(
    st.integers(-(10**6), 10**6),
    st.integers(-(2**70), 2**70),
    st.sampled_from(HUGE_INTEGERS),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.sampled_from(FLOATS),
)


GOOD_SCHEDULES = ("0 3 * * *", "*/5 * * * *", "@hourly", "@daily", "0 7 * * 1-5", "every 7m",
                  "every 30s", "every 2h", "every 90s", "0 0 L * *", "0 9 * * 5#2",
                  "30 6 15W * *")  # fmt: skip
#: what pg_cron 1.4 runs exactly (whole minutes, in GMT)
PG_CRON_SCHEDULES = ("0 3 * * *", "*/5 * * * *", "@hourly", "@daily", "0 7 * * 1-5", "every 2h")
BAD_SCHEDULES = ("0 0 31 2 *", "61 * * * *", "", "every 0s", "every 400d", "* * *")
GOOD_SQL = SQL[:6]
CELERY_ONLY = ("expires", "timeout", "retries", "max_runs", "queue")


#: ``notify`` as a manifest may write it (a secret is only ever a variable's name)
notify_values = st.fixed_dictionaries(
    {},
    optional={
        "on": st.lists(st.sampled_from(("failed_final", "missed", "recovered")), min_size=1,
                       max_size=3),
        "email": st.sampled_from(("ops@example.com", ["a@example.com", "b@example.org"])),
        "webhook": st.fixed_dictionaries({
            "url": st.sampled_from(("https://hooks.example.com/x", "http://127.0.0.1:9/h?t=1")),
            "secret_env": st.sampled_from(("ORCHESTRATOR_NOTIFY_SECRET_OPS",
                                           "ORCHESTRATOR_NOTIFY_SECRET_A1")),
        }),
    },
).filter(lambda notify: "email" in notify or "webhook" in notify)  # fmt: skip


@st.composite
def clean_job(draw: st.DrawFn, now: datetime) -> dict[str, object]:
    """A job valid by construction: the trigger, body, engine and options agree."""
    fields: dict[str, object] = {}
    trigger = draw(st.sampled_from(("cron", "cron", "at", "startup")))
    if trigger == "cron":
        fields["schedule"] = draw(st.sampled_from(GOOD_SCHEDULES))
    elif trigger == "at":
        fields["at"] = draw(future_instant(now))
    else:
        fields["on"] = "startup"
    body = draw(st.sampled_from(("sql", "sql", "task", "task", "command")))
    if body == "sql":
        fields["sql"] = draw(st.sampled_from(GOOD_SQL))
    elif body == "task":
        fields["task"] = TASK
    else:
        fields["command"] = draw(
            st.one_of(
                st.just(["true"]), st.just("echo hello"), st.lists(plain_text, max_size=2)
            ).map(lambda argv: argv if isinstance(argv, str) else ["echo", *argv])
        )
    on_pg_cron = (
        fields.get("schedule") in PG_CRON_SCHEDULES and body == "sql" and draw(st.booleans())
    )
    targets = ("auto", "pg_cron") if on_pg_cron else ("auto", "auto", "celery")
    fields["target"] = draw(st.sampled_from(targets))
    optional: dict[str, st.SearchStrategy[object]] = {
        "description": plain_text,
        "tags": st.lists(plain_text.filter(bool), max_size=3),
        "enabled": st.booleans(),
    }
    if fields["target"] != "pg_cron":
        optional |= {
            "timezone": st.sampled_from(ZONES[:-1]),
            "expires": future_instant(now),
            "timeout": st.sampled_from(("30s", "15m", "2h", 60)),
            "retries": st.fixed_dictionaries(
                {"max": st.sampled_from((1, 3)), "backoff": st.sampled_from((0, "30s"))}
            ),
            "max_runs": st.integers(1, 10),
            "overlap": st.sampled_from(("skip", "allow", "buffer_one", "cancel_other")),
            "queue": st.sampled_from(("default", "q1")),
            "notify": notify_values,
        }
    if "schedule" in fields:  # the scheduling options shape a recurring schedule only
        optional["catch_up"] = st.just("none")
        if fields["target"] != "pg_cron":
            optional |= {
                "catch_up": st.sampled_from(("none", "one", "all")),
                # below the shortest gap of every GOOD_SCHEDULE (every 30s)
                "jitter": st.sampled_from(("5s", 20, "29s")),
            }
    if body == "task":
        optional |= {
            "kwargs": st.dictionaries(plain_text, st.integers(-5, 5) | plain_text, max_size=3),
            "args": st.lists(st.integers(-5, 5) | plain_text, max_size=3),
        }
    for name in sorted(draw(st.sets(st.sampled_from(sorted(optional)), max_size=3))):
        fields[name] = draw(optional[name])
    if fields.get("catch_up") == "all" and draw(st.booleans()):
        fields["catch_up_limit"] = draw(st.sampled_from((1, 3, 1000)))
    return fields


def _hostile_string(draw: st.DrawFn) -> str:
    return draw(st.one_of(hostile_text, st.just("a\x00b"), st.just("\x01\x7f\x85\u2028\ufffe")))


@st.composite
def job(draw: st.DrawFn, now: datetime) -> dict[str, object]:
    """A clean job, and now and then one hostile change to it: the shape of most mistakes
    (and attacks), so that each class of value is often the *only* thing wrong, and a store
    that cannot hold it shows up as a failed apply rather than hiding behind another error."""
    fields = draw(clean_job(now))
    kind = draw(
        st.sampled_from(
            ("none", "none", "none", "instant", "text", "text", "number", "size", "junk",
             "schedule", "sql", "target", "notify")
        )
    )  # fmt: skip
    if kind == "instant":
        field = draw(st.sampled_from(("at", "expires")))
        fields.pop("schedule", None) if field == "at" else None
        fields.pop("on", None) if field == "at" else None
        fields[field] = draw(st.sampled_from(EXTREME_INSTANTS))
    elif kind == "text":
        where = draw(st.sampled_from(("description", "tags", "key", "value", "args", "command",
                                      "sql", "queue", "timezone")))  # fmt: skip
        value = _hostile_string(draw)
        if where == "tags":
            fields["tags"] = [value]
        elif where in ("key", "value", "args"):
            fields.pop("sql", None), fields.pop("command", None)
            fields["task"] = TASK
            if where == "args":
                fields["args"] = [value]
            else:
                fields["kwargs"] = {value: 1} if where == "key" else {"k": [value]}
        elif where == "command":
            fields.pop("sql", None), fields.pop("task", None)
            fields.pop("kwargs", None), fields.pop("args", None)
            fields["command"] = ["echo", value]
        elif where == "sql" and "sql" in fields:
            fields["sql"] = f"SELECT 1 -- {value}"
        else:
            fields[where if where != "sql" else "description"] = value
    elif kind == "number":
        fields.pop("sql", None), fields.pop("command", None)
        fields["task"] = TASK
        number = draw(json_numbers)
        fields["kwargs"] = {"n": number} if draw(st.booleans()) else {"deep": [[number]]}
    elif kind == "size":
        field = draw(
            st.sampled_from(
                ("timeout", "max_runs", "retries", "description", "catch_up_limit", "jitter")
            )
        )
        if field == "catch_up_limit":
            fields["catch_up"] = "all"
            fields["catch_up_limit"] = draw(st.sampled_from((0, 1000, 1001, *HUGE_INTEGERS)))
        elif field == "jitter":  # at or past a schedule's shortest gap, or any duration
            fields["jitter"] = draw(st.sampled_from(("30s", "1h", "1d", *DURATIONS)))
        elif field == "timeout":
            fields["timeout"] = draw(st.sampled_from(DURATIONS))
        elif field == "max_runs":
            fields["max_runs"] = draw(st.sampled_from(HUGE_INTEGERS))
        elif field == "retries":
            fields["retries"] = {"max": draw(st.sampled_from((0, 100, 101))),
                                 "backoff": draw(st.sampled_from(DURATIONS))}  # fmt: skip
        else:
            fields["description"] = "x" * draw(st.integers(10_000, 200_000))
    elif kind == "junk":  # a field holding anything at all (the unit tests' junk values)
        fields[draw(st.sampled_from(sorted(OPTIONS)))] = draw(junk_values)
    elif kind == "schedule":
        fields.pop("at", None), fields.pop("on", None)
        fields["schedule"] = draw(st.sampled_from(BAD_SCHEDULES) | junk_scalars)
    elif kind == "sql" and "sql" in fields:
        fields["sql"] = draw(st.sampled_from(SQL[len(GOOD_SQL) :]))
    elif kind == "target":
        fields["target"] = draw(st.sampled_from(("pg_cron", "celery", "nowhere")))
    elif kind == "notify":  # a secret written in, or a variable it may not name
        fields["notify"] = {"webhook": draw(st.sampled_from((
            {"url": "https://hooks.example.com/x", "secret": _hostile_string(draw)},
            {"url": "https://hooks.example.com/x", "secret_env": "DATABASE_URL"},
            {"url": "file:///etc/passwd", "secret_env": "ORCHESTRATOR_NOTIFY_SECRET_OPS"},
        )))}  # fmt: skip
    return fields


OPTIONS = ("description", "tags", "timezone", "enabled", "expires", "timeout", "retries",
           "max_runs", "overlap", "queue", "database", "kwargs", "args", "target", "catch_up",
           "catch_up_limit", "jitter", "notify")  # fmt: skip


def manifests(now: datetime) -> st.SearchStrategy[str]:
    """A whole manifest's YAML text: version 1 and up to three jobs named from ``NAMES``."""
    jobs = st.dictionaries(st.sampled_from(NAMES), job(now), max_size=3)
    return jobs.map(render)


def clean_manifests(now: datetime) -> st.SearchStrategy[str]:
    """Like ``manifests``, with valid-by-construction jobs only (one to three of them)."""
    jobs = st.dictionaries(st.sampled_from(NAMES), clean_job(now), min_size=1, max_size=3)
    return jobs.map(render)


def render(jobs: dict[str, dict[str, object]]) -> str:
    """The manifest as YAML; strings with control characters come out as escapes (``"\\0"``)."""
    return yaml.safe_dump(
        {"version": 1, "jobs": jobs}, sort_keys=False, allow_unicode=True, width=1_000_000
    )
