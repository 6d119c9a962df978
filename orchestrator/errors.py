"""The one exception hierarchy of the orchestrator.

Every error a user can provoke is an ``OrchestratorError``: commands catch this root, print
``str(error)`` and exit non-zero, so no traceback ever reaches a user. Like procrastinate, a
subclass's docstring is its default message; errors raised about a manifest carry the file, line,
job and field they are about, and render as ``PATH:LINE: job 'NAME': FIELD: message``.
"""

from __future__ import annotations


class OrchestratorError(Exception):
    """Orchestrator error."""

    def __init__(
        self,
        message: str | None = None,
        *,
        path: str | None = None,
        line: int | None = None,
        job: str | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message or (self.__doc__ or "").strip()
        self.path = path
        self.line = line
        self.job = job
        self.field = field
        super().__init__(self.message)

    def __str__(self) -> str:
        parts: list[str] = []
        if self.path is not None:
            parts.append(f"{self.path}:{self.line}" if self.line is not None else self.path)
        if self.job is not None:
            parts.append(f"job {self.job!r}")
        if self.field is not None:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts)


class ServiceError(OrchestratorError):
    """A service the orchestrator needs (PostgreSQL, pg_cron, Redis) is unavailable."""


class PgCronUnavailable(ServiceError):
    """pg_cron is not available in this database."""


class ManifestInvalid(OrchestratorError):
    """The manifest is invalid."""

    def __init__(self, errors: list[OrchestratorError], *, path: str | None = None) -> None:
        # Every error a user made is reported at once: the collection is the exception, and
        # each member is located (path, line, job, field) on its own.
        self.errors = sorted(errors, key=_error_order)
        count = len(self.errors)
        noun = "error" if count == 1 else "errors"
        super().__init__(f"{count} {noun}", path=path)

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


class PlacementError(OrchestratorError):
    """No engine can run this job exactly as declared."""


def _error_order(error: OrchestratorError) -> tuple[str, int, str, str]:
    return (error.path or "", error.line or 0, error.job or "", error.field or "")


class JobsRoleMissing(ServiceError):
    """The jobs role is not set up in this database: pg_cron jobs would run as the role that
    applies the manifest. Run scripts/jobs_role.sql as a superuser (README, "Security")."""
