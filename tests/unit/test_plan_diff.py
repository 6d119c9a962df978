"""The admin's plan diff (``orchestrator.admin.plan_diff``): nested fields flattened and sorted
the same way on both sides, each row marked added / removed / changed, and the words of the
confirmation and of the success message."""

from __future__ import annotations

from orchestrator.admin import plan_diff
from orchestrator.plan import Applied, Change, Plan


def _applied(name: str) -> Applied:
    return Applied(name=name, engine="pg_cron", engine_id="1", spec_hash="h")


def test_field_rows__nested_keys_flattened_in_one_sorted_order() -> None:
    """Keys listed in different orders on each side give rows sorted by dotted field name."""
    rows = plan_diff.field_rows(
        {"kind": "cron", "expr": "*/10 * * * *", "tz": "UTC"},
        {"tz": "UTC", "expr": "*/15 * * * *", "kind": "cron"},
        prefix="trigger",
    )
    assert rows == [plan_diff.FieldRow("trigger.expr", "changed", "*/10 * * * *", "*/15 * * * *")]


def test_field_rows__added_removed_and_changed() -> None:
    """A field empty on one side is added or removed; lists and numbers show as compact JSON."""
    rows = plan_diff.field_rows(
        {"a": 1, "tags": ["x"], "gone": "y", "blank": None},
        {"a": 2, "tags": ["x", "z"], "new": {"k": True}, "blank": ""},
    )
    assert [(r.field, r.kind, r.before, r.after) for r in rows] == [
        ("a", "changed", "1", "2"),
        ("gone", "removed", "y", ""),
        ("new.k", "added", "", "true"),
        ("tags", "changed", '["x"]', '["x", "z"]'),
    ]


def test_cards__a_kept_orphan_shows_no_removed_rows_unless_pruned() -> None:
    """Without prune a job gone from the manifest is kept, so its card lists no red rows."""
    gone = Change(
        name="old",
        action="delete",
        target="pg_cron",
        diff={"definition": {"from": {"name": "old", "body": {"sql": "SELECT 1"}}, "to": None}},
        applied=_applied("old"),
    )
    plan = Plan(changes=(gone,))
    assert plan_diff.cards(plan)[0].rows == []
    assert "still runs" in plan_diff.cards(plan)[0].note
    pruned = plan_diff.cards(plan, prune=True)[0]
    assert [(r.field, r.kind) for r in pruned.rows] == [("body.sql", "removed")]


def test_consequences__say_what_an_apply_does() -> None:
    """One sentence per kind of change, deletions only when pruning; the pending count agrees."""
    plan = Plan(
        changes=(
            Change(
                name="moved",
                action="update",
                target="celery",
                diff={"target": {"from": "pg_cron", "to": "celery"}},
                applied=_applied("moved"),
            ),
            Change(name="old", action="delete", target="pg_cron", applied=_applied("old")),
            Change(name="same", action="unchanged", target="pg_cron"),
        )
    )
    assert plan_diff.cards(plan)[0].move == "pg_cron → celery"
    assert plan_diff.consequences(plan, prune=False) == [
        "1 job updated: moved.",
        "1 job no longer in the manifest left running (not pruned): old.",
        "1 job left unchanged.",
    ]
    assert plan_diff.consequences(plan, prune=True)[1] == "1 job deleted: old."
    assert plan_diff.pending_count(plan, prune=False) == 1
    assert plan_diff.pending_count(plan, prune=True) == 2


def test_applied_message__counts_in_words() -> None:
    """The success message names what changed and skips what did not."""
    message = plan_diff.applied_message({"create": 2, "update": 1, "drift": 0, "unchanged": 5})
    assert message == "Applied: 2 jobs created, 1 job updated."
    assert plan_diff.applied_message({"create": 0}) == "Applied: nothing needed changing."
