"""Test settings: the project's own settings on the ``test`` profile's embedded services.

The test profile is a separate PostgreSQL cluster and Redis (``make test`` starts them), so a
test run never touches the data of a running ``make run``.
"""

from __future__ import annotations

import os

os.environ.setdefault("ORCHESTRATOR_PROFILE", "test")
# Tests install the upkeep jobs only where they test them (tests/integration/test_upkeep.py), so
# every other test plans exactly the manifest it writes; child processes inherit this.
os.environ.setdefault("ORCHESTRATOR_UPKEEP", "off")

from project.settings import *  # noqa: F403 - test settings are the project settings plus a profile
