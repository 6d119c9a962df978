"""Beat's due-time index of periodic tasks and the triggers that keep it (sql/0002_beat_due.sql)."""

from django.db import migrations, models

from project.sqlfiles import run_sql_file, sql_dir


class Migration(migrations.Migration):
    dependencies = [
        ("celery_engine", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.CreateModel(
            name="BeatDue",
            fields=[
                (
                    "task_id",
                    models.IntegerField(
                        help_text="django_celery_beat_periodictask.id",
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "due_at",
                    models.DateTimeField(
                        blank=True, help_text="null: never due (or dirty)", null=True
                    ),
                ),
                (
                    "dirty",
                    models.BooleanField(
                        default=True, help_text="changed since due_at was computed"
                    ),
                ),
                (
                    "change_seq",
                    models.BigIntegerField(default=0, help_text="bumped by every change"),
                ),
                (
                    "error",
                    models.TextField(
                        blank=True, default="", help_text="why due_at could not be computed"
                    ),
                ),
                ("computed_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "indexes": [
                    models.Index(
                        condition=models.Q(("due_at__isnull", False)),
                        fields=["due_at"],
                        name="celery_beat_due_at",
                    ),
                    models.Index(
                        condition=models.Q(("dirty", True)),
                        fields=["change_seq"],
                        name="celery_beat_dirty",
                    ),
                ],
            },
        ),
        run_sql_file(sql_dir(__file__), "0002_beat_due"),
    ]
