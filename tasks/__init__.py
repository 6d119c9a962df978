"""The application's Python jobs: the Celery tasks that ``task:`` jobs of the manifest call, one
module per concept (backups, embeddings, code ingest, graph, templates, start-up, demo).

They declare no scheduling policy of their own (no retries, no time limits, no queues): the
manifest is the one place for that, and the runner (``orchestrator.run_job``) applies it around
the call, so a job behaves as its manifest entry says whoever starts it.
"""
