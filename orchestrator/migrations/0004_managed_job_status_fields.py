"""Two registry facts the status model needs: ``resumed_at`` (missed runs count from a job's
last resume, not across its pause) and ``orphaned_at`` (an apply without ``--prune`` found the
job no longer in the manifest)."""

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("orchestrator", "0003_import_cron_runs")]

    operations = [
        migrations.AddField(
            model_name="managedjob",
            name="resumed_at",
            field=models.DateTimeField(
                blank=True,
                help_text="when an operator last resumed the job; missed runs count from then",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="managedjob",
            name="orphaned_at",
            field=models.DateTimeField(
                blank=True,
                help_text="when an apply found it no longer in the manifest (kept without --prune)",
                null=True,
            ),
        ),
    ]
