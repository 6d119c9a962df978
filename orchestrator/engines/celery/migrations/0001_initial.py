"""The unmanaged ``Worker`` model (moved here from the ``tasks`` app): no table, only the admin
page and its permissions."""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [("tasks", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="Worker",
            fields=[
                ("hostname", models.CharField(max_length=255, primary_key=True, serialize=False)),
            ],
            options={
                "verbose_name": "worker",
                "verbose_name_plural": "workers",
                "db_table": "celery_engine_worker_unmanaged",
                "permissions": [("drain_worker", "Can drain and resume Celery workers")],
                "managed": False,
                "default_permissions": ("view",),
            },
        ),
    ]
