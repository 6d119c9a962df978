"""``notify:`` in the manifest: what it accepts, where each mistake is reported, and that a
secret is only ever named, never written; and the webhook's signature."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from orchestrator.errors import ManifestInvalid
from orchestrator.notify import Event, body_of, signature
from orchestrator.specs import Notify, to_dict
from tests.unit.conftest import job_yaml, load, one_job

HOOK = "{url: 'https://hooks.example.com/x', secret_env: ORCHESTRATOR_NOTIFY_SECRET_OPS}"


def errors_of(text: str) -> list[str]:
    with pytest.raises(ManifestInvalid) as caught:
        load(text)
    return [str(error) for error in caught.value.errors]


def test_notify__parsed_with_every_event_by_default() -> None:
    """E-mail addresses (one or a list) and a webhook; ``on`` defaults to all three events;
    the canonical definition names the variable, not a secret."""
    spec = one_job(f"schedule: '@daily'\nsql: SELECT 1\nnotify:\n  email: ops@example.com\n"
                   f"  webhook: {HOOK}")  # fmt: skip
    assert spec.notify == Notify(
        events=("failed_final", "missed", "recovered"),
        email=("ops@example.com",),
        webhook="https://hooks.example.com/x",
        secret_env="ORCHESTRATOR_NOTIFY_SECRET_OPS",
    )
    assert to_dict(spec)["notify"] == {
        "on": ["failed_final", "missed", "recovered"],
        "email": ["ops@example.com"],
        "webhook": {
            "url": "https://hooks.example.com/x",
            "secret_env": "ORCHESTRATOR_NOTIFY_SECRET_OPS",
        },
    }
    assert Notify.from_dict(to_dict(spec)["notify"]) == spec.notify


def test_notify__unset_leaves_the_definition_as_before() -> None:
    """A job without notify has no notify key: definitions applied before keep their hash."""
    assert "notify" not in to_dict(one_job("schedule: '@daily'\nsql: SELECT 1"))


def test_notify__inherited_from_defaults_and_replaced_by_the_job() -> None:
    """``defaults.notify`` applies to every job; a job's own replaces it whole."""
    manifest = load(
        "version: 1\ndefaults:\n  notify: {email: [ops@example.com]}\njobs:\n"
        "  a: {schedule: '@daily', sql: SELECT 1}\n"
        "  b: {schedule: '@daily', sql: SELECT 1, notify: {email: [b@example.com], on: missed}}\n"
    )
    a, b = manifest.jobs
    assert a.notify == Notify(email=("ops@example.com",))
    assert b.notify == Notify(events=("missed",), email=("b@example.com",))


@pytest.mark.parametrize(
    ("notify", "error"),
    [
        ("  webhook: {url: 'https://x.example', secret: hunter2}",
         "jobs.yaml:7: job 'job': notify.webhook.secret: a secret never goes in the manifest: "
         "put it in an environment variable ORCHESTRATOR_NOTIFY_SECRET_<NAME> and name it with "
         "secret_env"),
        ("  webhook: {url: 'https://x.example', secret_env: DATABASE_URL}",
         "jobs.yaml:7: job 'job': notify.webhook.secret_env: 'DATABASE_URL': name an environment "
         "variable ORCHESTRATOR_NOTIFY_SECRET_<NAME> (upper-case letters, digits, _); the "
         "manifest names the secret, never holds it"),
        ("  webhook: {url: 'file:///etc/passwd', secret_env: ORCHESTRATOR_NOTIFY_SECRET_X}",
         "jobs.yaml:7: job 'job': notify.webhook.url: 'file:///etc/passwd' is not an http(s) "
         "URL"),
        ("  webhook: {url: 'https://x.example'}",
         "jobs.yaml:7: job 'job': notify.webhook: a webhook needs url and secret_env (the "
         "variable holding its signing secret)"),
        ("  email: [ops@example.com, nobody]",
         "jobs.yaml:7: job 'job': notify.email: 'nobody' is not an e-mail address"),
        ("  email: ops@example.com\n  on: [failed]",
         "jobs.yaml:8: job 'job': notify.on: must be one of failed_final, missed, recovered, "
         "got 'failed'"),
        ("  emails: ops@example.com",
         "jobs.yaml:7: job 'job': notify: unknown field 'emails' (did you mean 'email'?); "
         "notify takes on, email, webhook"),
        ("  on: [missed]",
         "jobs.yaml:7: job 'job': notify: needs email or webhook (or both): whom to tell"),
    ],
)  # fmt: skip
def test_notify__located_errors(notify: str, error: str) -> None:
    """Each mistake is reported at its own line, with the part of notify it is about; a
    secret's value is never echoed."""
    found = errors_of(job_yaml(f"schedule: '@daily'\nsql: SELECT 1\nnotify:\n{notify}"))
    assert found == [error]
    assert "hunter2" not in found[0]


def test_notify__signature_is_hmac_sha256_of_the_exact_body() -> None:
    """The body is compact JSON with sorted keys; the header is sha256=<hex HMAC>."""
    body = body_of(Event(job="j", event="recovered", run_id="r", status="succeeded"))
    assert body.startswith(b'{"at":"","event":"recovered","job":"j"')
    digest = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert signature("k", body) == f"sha256={digest}"
