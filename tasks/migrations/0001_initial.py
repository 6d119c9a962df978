"""The unmanaged ``Worker`` model: no table, only the admin page and its permissions."""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Worker",
            fields=[
                ("hostname", models.CharField(max_length=255, primary_key=True, serialize=False)),
            ],
            options={
                "verbose_name": "worker",
                "verbose_name_plural": "workers",
                "db_table": "tasks_worker_unmanaged",
                "permissions": [("drain_worker", "Can drain and resume Celery workers")],
                "managed": False,
                "default_permissions": ("view",),
            },
        ),
    ]
