"""Reach the Celery broker (Redis) and say clearly why not, without leaking its password."""

from __future__ import annotations

import urllib.parse

import redis
from django.conf import settings

from orchestrator.errors import ServiceError


def redacted(url: str) -> str:
    """The URL with its password replaced, fit for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def check_broker(url: str | None = None, timeout: float = 3.0) -> None:
    """Ping the broker; raise ``ServiceError`` naming the (redacted) URL and the reason."""
    url = url or settings.CELERY_BROKER_URL
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    except redis.AuthenticationError as error:
        raise ServiceError(f"Redis at {redacted(url)} refused our password: {error}") from error
    except redis.RedisError as error:
        raise ServiceError(
            f"cannot reach Redis at {redacted(url)}: {error}. Run `make services`, or set "
            "REDIS_URL to a running Redis."
        ) from error
    finally:
        client.close()
