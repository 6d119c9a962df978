"""Hostile query strings on every admin changelist: a 400 or a page, never a 500; and every
403 is logged as one line, without a traceback (``project.middleware.QueryStringGuard``)."""

from __future__ import annotations

import logging

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.db import models
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db(transaction=True)

#: the three of issue 12, then their kind: control characters, broken regular expressions,
#: lookups on fields that do not exist, values of the wrong type
HOSTILE = (
    "engine=%00",
    "job=%00",
    "name__regex=%5C",
    "q=%00",
    "q=a%01b",
    "%00=1",
    "status__in=%00,x",
    "id__regex=(",
    "id=abc",
    "nosuchfield=1",
    "o=999",
    "p=-1",
    "started__gte=not-a-date",
    "e=1",
)


def changelists() -> list[tuple[str, type[models.Model]]]:
    return [
        (reverse(f"admin:{m._meta.app_label}_{m._meta.model_name}_changelist"), m)
        for m in admin.site._registry
    ]


def regex_on_each_text_field(model: type[models.Model]) -> list[str]:
    """A broken regular expression on every text field of the model."""
    return [
        f"{field.name}__regex=%5C"
        for field in model._meta.get_fields()
        if isinstance(field, models.CharField | models.TextField)
    ]


@pytest.fixture
def superuser_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("qs-admin", password="x"))
    return client


def test_admin_query_strings__never_a_500_on_any_changelist(superuser_client: Client) -> None:
    """Every changelist of the admin site (the orchestrator's, the workers', auth's and
    django-celery-beat's) answers each hostile query string with a page or a 400, following
    Django's own redirect for lookups it refuses."""
    failures = []
    for url, model in changelists():
        for query in (*HOSTILE, *regex_on_each_text_field(model)):
            response = superuser_client.get(f"{url}?{query}", follow=True)
            if response.status_code not in (200, 400):
                failures.append((url, query, response.status_code))
    assert failures == []


@pytest.mark.parametrize(
    ("page", "query"),
    [
        ("orchestrator_managedjob", "engine=%00"),
        ("orchestrator_jobrun", "engine=%00"),
        ("orchestrator_jobrun", "job=%00"),
        ("orchestrator_managedjob", "name__regex=%5C"),
        ("django_celery_beat_periodictask", "name__regex=%5C"),
        ("auth_user", "username__regex=%5C"),
    ],
)
def test_admin_query_strings__issue_cases_answer_400(
    superuser_client: Client, page: str, query: str
) -> None:
    """The query strings of issue 12 (a NUL in a filter, a trailing backslash as a regular
    expression) answer 400 with a message about the address."""
    response = superuser_client.get(f"{reverse(f'admin:{page}_changelist')}?{query}")
    assert response.status_code == 400
    assert b"query string" in response.content


def test_admin_query_strings__a_good_filter_still_filters(superuser_client: Client) -> None:
    """The guard refuses only what no filter accepts: an ordinary regex filter answers 200."""
    url = reverse("admin:orchestrator_managedjob_changelist")
    assert superuser_client.get(f"{url}?name__regex=%5Ebackup").status_code == 200


def test_admin_query_strings__403_is_logged_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A staff user without permissions gets 403 on a changelist and on the apply action;
    each refusal is logged as a warning with no exception attached."""
    client = Client()
    client.force_login(User.objects.create_user("qs-staff", password="x", is_staff=True))
    with caplog.at_level(logging.WARNING):
        page = client.get(reverse("admin:orchestrator_jobrun_changelist"))
        action = client.post(reverse("admin:orchestrator_managedjob_apply"))
    assert (page.status_code, action.status_code) == (403, 403)
    forbidden = [record for record in caplog.records if "Forbidden" in record.getMessage()]
    assert len(forbidden) == 2
    assert all(record.exc_info is None for record in caplog.records)
