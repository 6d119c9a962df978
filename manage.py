#!/usr/bin/env python
"""Django's command-line utility for the orchestrator."""

from __future__ import annotations

import gc
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    # Start-up (Django's setup: about 1,000 modules) builds only objects that live as long as
    # the process; the cyclic collector's passes over them find nothing (a no-op plan at 10,000
    # jobs: 262 passes, 0.105 s of 0.85 s; 16 passes, 0.008 s with this). Collection is held
    # off until the command is fetched, then what start-up built is frozen (never walked
    # again) and collection resumes for the command's own work.
    gc.disable()
    from django.core.management import BaseCommand, ManagementUtility

    class Utility(ManagementUtility):
        def fetch_command(self, subcommand: str) -> BaseCommand:
            gc.freeze()
            gc.enable()
            return super().fetch_command(subcommand)

    Utility(sys.argv).execute()


if __name__ == "__main__":
    main()
