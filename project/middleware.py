"""Bad query strings get a 400, never a 500; a 403 is logged without a traceback.

Django's admin builds its changelist filters from the query string: ``?engine=%00`` reaches
PostgreSQL as a NUL byte it cannot store, ``?name__regex=\\`` as a regular expression it cannot
compile, and both surface as a ``DataError`` while the page renders (a 500). Lookups Django can
tell are wrong are answered with its "Database error" page (``admin/invalid_setup.html``),
which blames the installation. This middleware answers all three with a 400 that blames the
address instead, for every admin page of every app (django-celery-beat's included), because it
sits in front of them all rather than in each ModelAdmin.

Django logs a ``PermissionDenied`` raised by a view with its traceback; a 403 is a refusal,
not a fault, so the view's exception becomes the stock 403 response here and Django logs that
response as one warning line, without a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.db import DataError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template.response import SimpleTemplateResponse
from django.views.defaults import permission_denied

logger = logging.getLogger(__name__)

#: Control characters no filter, search or form value in a query string needs.
_FORBIDDEN = {chr(code) for code in range(32) if chr(code) not in "\t\n\r"}
BAD_QUERY = "Bad request: the address's query string holds a value no filter accepts."


def _has_control_characters(request: HttpRequest) -> bool:
    return any(
        char in _FORBIDDEN
        for key, values in request.GET.lists()
        for text in (key, *values)
        for char in text
    )


class QueryStringGuard:
    """See the module docstring."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _has_control_characters(request):
            logger.warning(
                "refused a query string with control characters", extra={"path": request.path}
            )
            return HttpResponseBadRequest(BAD_QUERY, content_type="text/plain")
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, PermissionDenied):
            return permission_denied(request, exception)
        if isinstance(exception, DataError) and request.method in ("GET", "HEAD") and request.GET:
            logger.warning(
                "refused a query string the database could not use",
                extra={"path": request.path, "error": str(exception).strip().splitlines()[0]},
            )
            return HttpResponseBadRequest(BAD_QUERY, content_type="text/plain")
        return None

    def process_template_response(
        self, request: HttpRequest, response: SimpleTemplateResponse
    ) -> SimpleTemplateResponse | HttpResponse:
        if response.template_name == "admin/invalid_setup.html" and request.GET:
            return HttpResponseBadRequest(BAD_QUERY, content_type="text/plain")
        return response
