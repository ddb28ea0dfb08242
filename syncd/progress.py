"""Progress of a long ``syncd once`` (a first sync, a backfill), for the operator watching it.

The engine and delivery tell a :class:`Progress` what they did (a page
read, writes planned, a write delivered or failed, a wait for a rate limit);
it keeps the counts and, when due, hands a line to its output:

- on a terminal (``live``) one line rewritten in place, at most a few times a
  second: ``read 1,200 of ~4,100 records · planned 310 · delivered 120 of 310 ·
  ETA 3m20s``, with ``waiting for GitHub's rate limit until 14:05 UTC`` while
  a wait lasts;
- elsewhere (cron, a log file) the same words as a plain line every
  ``interval`` seconds, so a long run shows it is alive without flooding.

The total of records is an estimate: a feed is read oldest change first, so
how far its latest record's time has come between where the feed started
and now tells the share read. The writes' total is the outbox's (exact).
Writes to a service whose limits syncd plans by (GitHub: 80 comments a
minute, 500 an hour) are shown with when those limits let them be done:
``GitHub: 620 writes due, done by about 15:40 UTC``; the estimate left is
never shorter than that.
Clocks are injected: ``monotonic`` paces the lines and measures the rate,
``wall`` is the time the feeds' records are compared with.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from syncd.errors import until_text

LIVE_EVERY = 0.2  # seconds between redraws on a terminal
LINE_EVERY = 30.0  # seconds between lines off a terminal
SHOWN_WAIT = 1.0  # waits shorter than this are not worth a word


@dataclass
class _Feed:
    start: datetime | None = None  # the time of the first record read
    position: datetime | None = None  # the time of the latest record read
    read: int = 0

    def estimate(self, now: datetime) -> int | None:
        """Records this feed will have read at its end, from how far its position came."""
        if self.start is None or self.position is None or self.read == 0:
            return None
        span = (now - self.start).total_seconds()
        done = (self.position - self.start).total_seconds()
        if span <= 0 or done <= 0:
            return None
        share = min(1.0, done / span)
        if share < 0.01:
            return None
        return max(self.read, round(self.read / share))


class Progress:
    def __init__(
        self,
        output: Callable[[str], None],
        *,
        live: bool,
        interval: float = LINE_EVERY,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ):
        self.output = output
        self.live = live
        self.interval = LIVE_EVERY if live else interval
        self.monotonic = monotonic
        self.wall = wall
        self.started = monotonic()
        self._last_shown: float | None = None
        self.feeds: dict[str, _Feed] = {}
        self.done_feeds: set[str] = set()
        self.planned = 0
        self.delivered = 0
        self.failed = 0
        self.to_deliver: int | None = None  # writes due when delivery began, and planned since
        self.wait: tuple[str, datetime] | None = None  # (service, until) of the wait in hand
        # service -> (writes due, when its write budget lets them be done)
        self.paced_writes: dict[str, tuple[int, datetime]] = {}
        self.shown_any = False
        self.finished = False

    # -- what the run tells -------------------------------------------------------------------

    def page(self, connector: str, records: int, actions: int, times: list[datetime]) -> None:
        feed = self.feeds.setdefault(connector, _Feed())
        feed.read += records
        if times:
            if feed.start is None:
                feed.start = min(times)
            latest = max(times)
            feed.position = latest if feed.position is None else max(feed.position, latest)
        self.planned += actions
        self.wait = None
        self.tick()

    def feed_done(self, connector: str) -> None:
        self.done_feeds.add(connector)
        self.tick()

    def delivering(self, due: int) -> None:
        """Delivery begins with ``due`` writes waiting (the outbox's count)."""
        self.to_deliver = max(self.to_deliver or 0, self.delivered + self.failed + due)
        self.tick()

    def sent(self, delivered: int = 0, failed: int = 0) -> None:
        self.delivered += delivered
        self.failed += failed
        self.wait = None
        self.tick()

    def paced(self, service: str, writes: int, done_by: datetime) -> None:
        """``writes`` are due to ``service``, whose limits syncd plans by: done at ``done_by``."""
        if writes > 0:
            self.paced_writes[service] = (writes, done_by)
        else:
            self.paced_writes.pop(service, None)
        self.tick()

    def waiting(self, service: str, seconds: float | None = None, until: datetime | None = None) -> None:
        """A wait for a service's rate limit: ``seconds`` slept in place, or parked ``until``."""
        if until is None:
            if seconds is None or seconds < SHOWN_WAIT:
                return
            until = self.wall() + timedelta(seconds=seconds)
        self.wait = (service, until)
        self.tick(force=True)

    # -- the line ----------------------------------------------------------------------------------

    @property
    def read(self) -> int:
        return sum(f.read for f in self.feeds.values())

    def estimated_records(self) -> int | None:
        """The records all feeds will have read (None until every feed read gives a guess)."""
        now = self.wall()
        total = 0
        for name, feed in self.feeds.items():
            guess = feed.read if name in self.done_feeds else feed.estimate(now)
            if guess is None:
                return None
            total += guess
        return total if self.feeds else None

    def eta(self) -> float | None:
        """Seconds left, from the pace so far (reading and delivering counted alike)."""
        elapsed = self.monotonic() - self.started
        work_done = self.read + self.delivered + self.failed
        if elapsed <= 0 or work_done == 0:
            return None
        records = self.estimated_records()
        if records is None:
            return None
        writes = max(self.to_deliver or 0, self.planned)
        left = max(0, records - self.read) + max(0, writes - self.delivered - self.failed)
        paced = max((done_by for _, done_by in self.paced_writes.values()), default=None)
        at_least = (paced - self.wall()).total_seconds() if paced is not None else 0.0
        return max(left / (work_done / elapsed), at_least)

    def line(self) -> str:
        records = self.estimated_records()
        parts = [f"read {self.read:,}" + (f" of ~{records:,}" if records and records > self.read else "") + " records"]
        parts.append(f"planned {self.planned:,} writes")
        if self.to_deliver is not None:
            total = max(self.to_deliver, self.planned)
            failed = f" ({self.failed} failed)" if self.failed else ""
            parts.append(f"delivered {self.delivered:,} of {total:,}{failed}")
        for service, (writes, done_by) in sorted(self.paced_writes.items()):
            if done_by > self.wall():
                parts.append(f"{service}: {writes:,} writes due, done by about {until_text(done_by, self.wall())}")
        if self.wait is not None:
            service, until = self.wait
            parts.append(f"waiting for {service}'s rate limit until {until_text(until, self.wall())}")
        # A wait's end says more than the pace; a finished run has nothing left.
        eta = self.eta() if self.wait is None and not self.finished else None
        if eta is not None and eta >= 1:
            parts.append(f"about {duration_text(eta)} left")
        return " · ".join(parts)

    def tick(self, force: bool = False) -> None:
        now = self.monotonic()
        if not force and self._last_shown is not None and now - self._last_shown < self.interval:
            return
        if not force and self._last_shown is None and now - self.started < self.interval and not self.live:
            return  # a short run off a terminal says nothing until its first interval passed
        self._last_shown = now
        self.shown_any = True
        self.output(self.line())

    def finish(self) -> None:
        """The run is over: on a terminal the line shows where it ended and is closed
        (the summary follows on its own line); off a terminal nothing more is said."""
        self.done_feeds.update(self.feeds)  # what was read is all there was
        self.finished = True
        if self.live and self.shown_any:
            self.output(self.line())
            self.output("")


def duration_text(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class TerminalLine:
    """Writes progress lines to a terminal stream, each over the last (``\\r``, cleared to the end);
    an empty line ends the last one."""

    def __init__(self, stream):
        self.stream = stream

    def __call__(self, text: str) -> None:
        self.stream.write("\r\x1b[K" + text if text else "\n")
        self.stream.flush()


class PlainLines:
    """Writes progress lines one under the other (a log file, a pipe)."""

    def __init__(self, stream):
        self.stream = stream

    def __call__(self, text: str) -> None:
        if text:
            self.stream.write(f"progress: {text}\n")
            self.stream.flush()
