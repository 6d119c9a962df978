"""Install pg_cron (or explain how) before anything schedules a job."""

from __future__ import annotations

from django.db import migrations


def ensure_pg_cron(apps, schema_editor) -> None:
    from orchestrator.engines.pg_cron.preflight import ensure_pg_cron as ensure

    ensure(schema_editor.connection)


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [migrations.RunPython(ensure_pg_cron, migrations.RunPython.noop, elidable=False)]
