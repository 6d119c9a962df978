"""``RunCounter`` and the triggers feeding it from every run write (``sql/0010_...sql``)."""

from __future__ import annotations

import django.contrib.postgres.fields
from django.db import migrations, models

from project.sqlfiles import run_sql_file, sql_dir


class Migration(migrations.Migration):
    dependencies = [
        ("orchestrator", "0009_backfill_slots"),
    ]

    operations = [
        migrations.CreateModel(
            name="RunCounter",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("job", models.CharField(max_length=63)),
                ("engine", models.CharField(max_length=16)),
                ("status", models.CharField(max_length=32)),
                (
                    "runs",
                    models.BigIntegerField(default=0, help_text="runs that reached this status"),
                ),
                (
                    "timed",
                    models.BigIntegerField(default=0, help_text="of those, runs with a duration"),
                ),
                (
                    "duration_seconds",
                    models.FloatField(default=0.0, help_text="sum of their durations"),
                ),
                (
                    "duration_le",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.BigIntegerField(),
                        default=list,
                        help_text="cumulative counts of durations <= each bound, in seconds",
                        size=None,
                    ),
                ),
                ("last_finished", models.DateTimeField(blank=True, null=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("job", "engine", "status"), name="run_counter_job_engine_status"
                    )
                ],
            },
        ),
        run_sql_file(sql_dir(__file__), "0010_run_counters"),
    ]
