"""The base of the admin pages that show state the admin must not edit.

Jobs are defined by the manifest, runs by the engines, workers by Celery: their admin pages
look and act (pause, run now, drain) but never add, change or delete rows.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest


class ReadOnlyAdmin(admin.ModelAdmin):
    """A ModelAdmin with no add, change or delete permission for anyone."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
