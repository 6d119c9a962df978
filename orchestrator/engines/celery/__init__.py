"""The Celery engine: django-celery-beat writes, the beat scheduler, the runner task, fleet control
and run history from Celery's signals. A Django app of its own (label ``celery_engine``) because
it has an admin page (workers) and permissions; the hall reaches it only through ``Backend``."""
