"""The ``notify:`` field: whom to tell, by e-mail and/or a signed webhook, of which events.

Its own module because it is a small grammar of its own (``on``, ``email``, ``webhook`` with
``url`` and ``secret_env``) with one rule that matters for security: the manifest names the
environment variable that holds a webhook's secret and never holds the secret itself.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from orchestrator.field_values import FieldError, choice, shorten, suggest, text
from orchestrator.specs import NOTIFY_EVENTS, Notify
from orchestrator.yaml_source import Node

_SECRET_ENV = re.compile(r"^ORCHESTRATOR_NOTIFY_SECRET_[A-Z0-9_]+$")
_NOTIFY_KEYS = ("on", "email", "webhook")
_WEBHOOK_KEYS = ("url", "secret_env")


def _keyed(node: Node, allowed: tuple[str, ...], what: str) -> dict[str, Node]:
    """A mapping's values by key: unknown and duplicate keys refused at their line."""
    if node.kind != "mapping":
        raise FieldError(f"expected a mapping ({', '.join(allowed)}), got {node.describe()}")
    values: dict[str, Node] = {}
    for key, child in node.pairs():
        name = key.value if key.kind == "scalar" else "?"
        if name == "secret":
            raise FieldError(
                "a secret never goes in the manifest: put it in an environment variable "
                "ORCHESTRATOR_NOTIFY_SECRET_<NAME> and name it with secret_env",
                line=key.line,
                suffix=f".{name}",
            )
        if name not in allowed:
            raise FieldError(
                f"unknown field {name!r}{suggest(name, allowed)}; {what} " + ", ".join(allowed),
                line=key.line,
            )
        if name in values:
            raise FieldError(f"duplicate key {name!r}", line=key.line)
        values[name] = child
    return values


def parse_notify(node: Node, ctx: object) -> Notify:
    """``notify: {on: [...], email: [...], webhook: {url, secret_env}}``; see docs/manifest.md."""
    values = _keyed(node, _NOTIFY_KEYS, "notify takes")
    events = NOTIFY_EVENTS
    if "on" in values:
        items = values["on"].items if values["on"].kind == "sequence" else [values["on"]]
        try:
            events = tuple(dict.fromkeys(choice(item, NOTIFY_EVENTS) for item in items))
        except FieldError as error:
            raise FieldError(error.message, line=values["on"].line, suffix=".on") from error
        if not events:
            raise FieldError("name at least one event", line=values["on"].line, suffix=".on")
    emails: list[str] = []
    if "email" in values:
        email_node = values["email"]
        items = email_node.items if email_node.kind == "sequence" else [email_node]
        for item in items:
            try:
                address = text(item, what="an e-mail address")
                validate_email(address)
            except FieldError as error:
                raise FieldError(error.message, line=item.line, suffix=".email") from error
            except ValidationError as error:
                raise FieldError(
                    f"{shorten(repr(item.value), 80)} is not an e-mail address",
                    line=item.line,
                    suffix=".email",
                ) from error
            emails.append(address)
    url = secret_env = None
    if "webhook" in values:
        hook = values["webhook"]
        try:
            parts = _keyed(hook, _WEBHOOK_KEYS, "a webhook takes")
        except FieldError as error:
            raise FieldError(
                error.message, line=error.line or hook.line, suffix=".webhook" + error.suffix
            ) from error
        url, secret_env = _webhook(hook, parts)
    if not emails and url is None:
        raise FieldError("needs email or webhook (or both): whom to tell")
    return Notify(events=events, email=tuple(emails), webhook=url, secret_env=secret_env)


def _webhook(hook: Node, parts: dict[str, Node]) -> tuple[str, str]:
    if "url" not in parts or "secret_env" not in parts:
        raise FieldError(
            "a webhook needs url and secret_env (the variable holding its signing secret)",
            line=hook.line,
            suffix=".webhook",
        )
    url = text(parts["url"], what="an http(s) URL")
    scheme, _, rest = url.partition("://")
    if scheme not in ("http", "https") or not rest.split("/")[0]:
        raise FieldError(
            f"{shorten(url, 80)!r} is not an http(s) URL", line=parts["url"].line,
            suffix=".webhook.url",
        )  # fmt: skip
    secret_env = text(parts["secret_env"], what="an environment variable's name")
    if not _SECRET_ENV.match(secret_env):
        raise FieldError(
            f"{shorten(secret_env, 80)!r}: name an environment variable "
            "ORCHESTRATOR_NOTIFY_SECRET_<NAME> (upper-case letters, digits, _); the manifest "
            "names the secret, never holds it",
            line=parts["secret_env"].line,
            suffix=".webhook.secret_env",
        )
    return url, secret_env
