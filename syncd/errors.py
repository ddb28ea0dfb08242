"""Errors that cross module boundaries.

Each names what went wrong in words a user can act on; ``str(error)`` is the
one-line message the CLI prints. None of them ever carries a secret.
"""

from __future__ import annotations

import difflib
from datetime import datetime, timedelta, timezone
from typing import Iterable


class SyncdError(Exception):
    """Base for every error syncd expects and reports in one line."""


class ConfigError(SyncdError):
    """The configuration cannot be used. ``problems`` holds one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


class StoreError(SyncdError):
    """The state store cannot be used as it stands (too new, not a store, closed...)."""


class StoreUnusable(StoreError):
    """The store cannot be used where it is: damaged, not a store, a directory, not
    readable or writable by syncd's user, or the disk failed. The CLI exits 2."""


class StoreFull(StoreUnusable):
    """The disk holding the store is full: the change in hand was rolled back."""


class StoreLocked(StoreError):
    """Another syncd process holds the state store."""


class ApiError(SyncdError):
    """A service answered in a way the connector cannot go on with."""

    def __init__(self, connector: str, message: str, *, status: int | None = None):
        self.connector = connector
        self.status = status
        super().__init__(f"{connector}: {message}")


class AuthError(ApiError):
    """Credentials refused (401) or not allowed (403): retrying will not help."""


class NotFound(ApiError):
    """404: the record is not there (or not visible to these credentials)."""


class Gone(ApiError):
    """The issue is deleted, or no longer visible to syncd's account. Each tracker
    connector maps its service's answer to it (GitHub 410, Jira's 404 "Issue does
    not exist", Linear's "Entity not found: Issue" or trash); the engine then
    ends the issue's links (see Engine.issues_gone)."""


class Conflict(ApiError):
    """409/422: the service refused the write as it stands (closed ticket...)."""


class TransientError(ApiError):
    """Still failing after the retries allowed: try again next cycle.

    ``maybe_applied`` is True when a write may have reached the service
    (a 5xx or a timeout after the request was sent): delivery must look
    for the marker before sending it again.
    """

    def __init__(
        self,
        connector: str,
        message: str,
        *,
        status: int | None = None,
        maybe_applied: bool = False,
        retry_after: float | None = None,
    ):
        super().__init__(connector, message, status=status)
        self.maybe_applied = maybe_applied
        self.retry_after = retry_after


class RateLimited(TransientError):
    """The service asked for a longer wait than ``max_wait`` allows in place.

    Nothing is sent to the connector before ``until`` (an aware UTC datetime,
    on the app's clock): the HTTP layer refuses to, and the daemon parks the
    connector. The request was refused, not applied. ``service`` is the
    service's display name ("GitHub").
    """

    def __init__(self, connector: str, message: str, *, until: datetime, service: str, status: int | None = None):
        super().__init__(connector, message, status=status, maybe_applied=False)
        self.until = until
        self.service = service


class BudgetSpent(RateLimited):
    """A budget of writes syncd plans by (GitHub's content-creation limits) is spent
    until ``until``: this write was not sent. Unlike :class:`RateLimited` the
    service refused nothing, and reads and other writes go on: only writes of
    the same kind wait (the connector is not parked)."""


def until_text(until: datetime, now: datetime) -> str:
    """When a wait ends, for people: "14:05 UTC" (with the date when it is not
    ``now``'s day). Always UTC, rounded up to the minute (nothing is sent before
    it), so the text does not depend on the machine's time zone."""
    until = until.astimezone(timezone.utc)
    shown = until.replace(second=0, microsecond=0)
    if shown < until:
        shown += timedelta(minutes=1)
    if shown.date() == now.astimezone(timezone.utc).date():
        return shown.strftime("%H:%M UTC")
    return shown.strftime("%Y-%m-%d %H:%M UTC")


class PayloadError(ApiError):
    """A response did not have the shape the connector expects.

    ``record_id`` names the record when one can be named, so the engine can
    quarantine that record and go on.
    """

    def __init__(self, connector: str, message: str, *, record_id: str | None = None, payload: object = None):
        super().__init__(connector, message)
        self.record_id = record_id
        self.payload = payload


def unknown_key_message(key: str, known: Iterable[str]) -> str:
    """What to say about a key a settings or mapping file does not know."""
    known = sorted(known)
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f'unknown key; did you mean "{close[0]}"?'
    return f"unknown key; remove it (known keys here: {', '.join(known)})"
