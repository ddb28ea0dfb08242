"""Connectors parked until a service's rate limit ends.

When a service asks for a longer wait than ``max_wait`` (GitHub's primary
limit with its reset an hour away, a secondary limit that keeps coming back),
the HTTP layer raises :class:`~syncd.errors.RateLimited` with the instant.
The engine parks that connector here: no poll and no delivery to it before
then, while the others go on. Each wait is logged once at info level
("waiting for GitHub's rate limit until 14:05 UTC": UTC, on the app's clock),
counted for /metrics, and kept in the store so that a later ``syncd once``
or a restart sends nothing before the end either.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable, Mapping

import structlog

from syncd.errors import RateLimited, SyncdError, until_text
from syncd.records import format_time, parse_time

if TYPE_CHECKING:
    from connectors.base import Connector
    from syncd.store import Store

log = structlog.get_logger("syncd.ratelimits")


@dataclass(frozen=True)
class Wait:
    connector: str
    service: str
    until: datetime


class Parking:
    """Which connectors wait for a rate limit, and until when (the app's clock)."""

    def __init__(self, store: Store, connectors: Mapping[str, Connector], clock: Callable[[], datetime]):
        self.store = store
        self.connectors = connectors
        self.clock = clock
        self.waits: dict[str, Wait] = {}
        self.begun: Counter[str] = Counter()  # waits begun per connector
        self.seconds: defaultdict[str, float] = defaultdict(float)  # seconds of those waits
        # Told of each wait begun or lengthened: (wait, seconds added, begun).
        self.listeners: list[Callable[[Wait, float, bool], None]] = []
        now = clock()
        for name, saved in _saved(store).items():
            try:
                until = parse_time(saved["until"])
            except (KeyError, TypeError, ValueError):
                continue
            if name in connectors and until is not None and until > now:
                self.waits[name] = Wait(name, str(saved.get("service") or name), until)
                self._block_http(name, until)

    def until(self, connector: str) -> datetime | None:
        """When the connector's wait ends; None when it is not waiting (any more)."""
        wait = self.waits.get(connector)
        if wait is None:
            return None
        if self.clock() >= wait.until:
            del self.waits[connector]
            self._save()
            log.debug(f"{wait.service}'s rate limit is over; sending again", connector=connector)
            return None
        return wait.until

    def all(self) -> dict[str, Wait]:
        for name in list(self.waits):
            self.until(name)
        return dict(self.waits)

    def park(self, exc: RateLimited) -> None:
        """Park ``exc.connector`` until ``exc.until``: one log line per wait."""
        current = self.waits.get(exc.connector)
        if current is not None and current.until >= exc.until:
            return
        now = self.clock()
        wait = Wait(exc.connector, exc.service, exc.until)
        self.waits[exc.connector] = wait
        seconds = max(0.0, (exc.until - (current.until if current is not None else now)).total_seconds())
        if current is None:
            self.begun[exc.connector] += 1
        self.seconds[exc.connector] += seconds
        self._block_http(exc.connector, exc.until)
        self._save()
        log.info(
            f"waiting for {exc.service}'s rate limit until {until_text(exc.until, now)}",
            connector=exc.connector,
            until=format_time(exc.until),
        )
        for listener in self.listeners:
            listener(wait, seconds, current is None)

    def _block_http(self, connector: str, until: datetime) -> None:
        """The connector's HTTP client sends nothing before ``until`` either (a wait read from the store)."""
        if connector in self.connectors:
            http = self.connectors[connector].http
            http.blocked_until = max(http.blocked_until or 0.0, until.timestamp())

    def _save(self) -> None:
        if self.store.readonly:
            return
        try:
            self.store.set_rate_limits(
                {name: {"until": format_time(w.until), "service": w.service} for name, w in self.waits.items()}
            )
        except SyncdError as exc:
            log.warning("could not record the rate-limit wait in the store", error=str(exc))


def _saved(store: Store) -> dict:
    try:
        return store.rate_limits()
    except SyncdError:
        return {}


def waits_in_store(store: Store, now: datetime) -> dict[str, Wait]:
    """The waits a store records that have not ended at ``now`` (for ``syncd status``)."""
    out = {}
    for name, saved in _saved(store).items():
        try:
            until = parse_time(saved["until"])
        except (KeyError, TypeError, ValueError):
            continue
        if until is not None and until > now:
            out[name] = Wait(name, str(saved.get("service") or name), until.astimezone(timezone.utc))
    return out
