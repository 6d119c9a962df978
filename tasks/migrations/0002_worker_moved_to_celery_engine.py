"""The ``Worker`` model moved to the Celery engine's app (``celery_engine``); it never had a table,
so this only updates Django's migration state."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("tasks", "0001_initial")]

    operations = [migrations.DeleteModel(name="Worker")]
