"""Test settings: the project's own settings on the ``test`` profile's embedded services.

The test profile is a separate PostgreSQL cluster and Redis (``make test`` starts them), so a
test run never touches the data of a running ``make run``.
"""

from __future__ import annotations

import os

os.environ.setdefault("ORCHESTRATOR_PROFILE", "test")

from project.settings import *  # noqa: F403 - test settings are the project settings plus a profile
