"""The plan as the admin shows it: one card per job, one row per field, in a stable order.

The CLI prints each changed top-level field as two JSON blobs; a reader then hunts for the one
key that differs inside ``trigger`` or ``body``, and the two sides may list their keys in
different orders. Here nested values are flattened into dotted fields (``trigger.expr``) sorted
by name, and each row says whether the field is *added*, *removed* or *changed*, so a template
can colour it. A created job shows the fields it will have, a deleted one the fields it had
(empty fields left out: they say nothing); a drifted one shows what the engine has now against
what the apply writes back.

Pure functions of a ``Plan``: unit-tested without a database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from orchestrator.plan import Action, Change, Plan
from orchestrator.specs import to_dict

Kind = Literal["added", "removed", "changed"]

#: what each action means to an operator, as a verb phrase and as a heading
ACTION_WORDS = {
    "create": ("created", "New"),
    "update": ("updated", "Changed in the manifest"),
    "drift": ("restored", "Changed outside the manifest"),
    "delete": ("deleted", "No longer in the manifest"),
}
_MISSING = object()


@dataclass(frozen=True, slots=True)
class FieldRow:
    field: str
    kind: Kind
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class JobCard:
    name: str
    action: str
    engine: str
    #: "pg_cron → celery" when the job moves between engines, else ""
    move: str
    heading: str
    note: str
    rows: list[FieldRow] = field(default_factory=list)


def text(value: object) -> str:
    """A field's value as one line: strings as written, the rest as compact sorted JSON."""
    if value is _MISSING or value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def _empty(value: object) -> bool:
    return value is _MISSING or value is None or value == [] or value == {} or value == ""


def _flatten(prefix: str, value: object) -> Iterator[tuple[str, object]]:
    if isinstance(value, Mapping) and value:
        for key in sorted(value, key=str):
            yield from _flatten(f"{prefix}.{key}" if prefix else str(key), value[key])
    else:
        yield prefix, value


def field_rows(before: object, after: object, prefix: str = "") -> list[FieldRow]:
    """Rows for every leaf field that differs between ``before`` and ``after``, sorted by
    field name. A side that is ``None`` (or missing) counts as absent."""
    old = dict(_flatten(prefix, before)) if before is not None else {}
    new = dict(_flatten(prefix, after)) if after is not None else {}
    rows = []
    for name in sorted(old.keys() | new.keys()):
        was, now = old.get(name, _MISSING), new.get(name, _MISSING)
        if was == now:
            continue
        if _empty(was) and _empty(now):
            continue
        kind: Kind = "added" if _empty(was) else "removed" if _empty(now) else "changed"
        rows.append(FieldRow(field=name or prefix, kind=kind, before=text(was), after=text(now)))
    return rows


def _rows(change: Change, prune: bool) -> list[FieldRow]:
    if change.action == "create":
        spec = to_dict(change.placed.spec) if change.placed is not None else {}
        return field_rows(None, {k: v for k, v in spec.items() if k != "name"})
    if change.action == "delete":
        if not prune:  # kept: red "removed" rows would say the opposite
            return []
        definition = change.diff.get("definition", {}).get("from") or {}
        if not isinstance(definition, Mapping):
            return []
        return field_rows({k: v for k, v in definition.items() if k != "name"}, None)
    rows: list[FieldRow] = []
    for name in sorted(change.diff):
        values = change.diff[name]
        rows.extend(field_rows(values.get("from"), values.get("to"), prefix=name))
    return sorted(rows, key=lambda row: row.field)


def _note(change: Change, prune: bool) -> str:
    if change.action == "drift":
        return "Someone changed this job in its engine; applying puts the manifest's version back."
    if change.action == "delete":
        if prune:
            return "Deleted from its engine by this apply."
        return "Kept as it is: it still runs until someone with the prune permission deletes it."
    return ""


def cards(plan: Plan, prune: bool = False) -> list[JobCard]:
    """One card per job the plan changes (unchanged jobs left out), in the plan's order."""
    result = []
    for change in plan.changes:
        if change.action == "unchanged":
            continue
        move = ""
        if change.action == "update" and "target" in change.diff:
            target = change.diff["target"]
            move = f"{target.get('from')} → {target.get('to')}"
        result.append(
            JobCard(
                name=change.name,
                action=change.action,
                engine=change.target,
                move=move,
                heading=ACTION_WORDS[change.action][1],
                note=_note(change, prune),
                rows=_rows(change, prune),
            )
        )
    return result


def counted(count: int, what: str = "job") -> str:
    return f"{count} {what}" if count == 1 else f"{count} {what}s"


def consequences(plan: Plan, prune: bool) -> list[str]:
    """What an apply of ``plan`` does, one sentence per kind of change, in plain words."""
    summary = plan.summary()
    lines = []
    pending: tuple[Action, ...] = ("create", "update", "drift")
    for action in pending:
        names = [c.name for c in plan.of(action)]
        if names:
            lines.append(
                f"{counted(len(names)).capitalize()} {ACTION_WORDS[action][0]}: {', '.join(names)}."
            )
    gone = [c.name for c in plan.of("delete")]
    if gone and prune:
        lines.append(f"{counted(len(gone)).capitalize()} deleted: {', '.join(gone)}.")
    elif gone:
        lines.append(
            f"{counted(len(gone)).capitalize()} no longer in the manifest left running "
            f"(not pruned): {', '.join(gone)}."
        )
    if summary["unchanged"]:
        lines.append(f"{counted(summary['unchanged'])} left unchanged.")
    return lines


def pending_count(plan: Plan, prune: bool) -> int:
    """How many jobs an apply would change (deleted ones only when pruning)."""
    actions: tuple[Action, ...] = ("create", "update", "drift")
    return len(plan.of(*actions, "delete") if prune else plan.of(*actions))


def applied_message(summary: Mapping[str, int]) -> str:
    """The success message after an apply, e.g. "Applied: 2 jobs created, 1 updated."."""
    parts = []
    for action in ("create", "update", "drift", "delete"):
        if summary.get(action):
            parts.append(f"{counted(summary[action])} {ACTION_WORDS[action][0]}")
    if not parts:
        return "Applied: nothing needed changing."
    return "Applied: " + ", ".join(parts) + "."
