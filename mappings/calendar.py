"""Time zones, business hours and SLA arithmetic.

Deadlines are computed in the team's time zone so that "within 2 business
days" means what the team means by it, whatever the season: business windows
are built from local wall-clock times each day and only then turned into
instants, so a daylight-saving change moves the instants, not the promise.

Two kinds of duration (see :class:`Duration`):

* calendar time: ``N hours``/``N minutes`` are elapsed time; ``N days`` is the
  same local time N days later (47 or 49 real hours across a DST change);
* business time: only the calendar's open hours on its working days, holidays
  excepted, count. ``N business days`` started inside business hours ends at
  the same local time N working days later; started outside them (a Friday
  evening) it ends at the close of the Nth working day.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_SCAN_DAYS = 3 * 366  # a calendar open less than once in three years is a mistake

_DURATION = re.compile(r"^\s*(?P<n>\d+)\s+(?P<business>business\s+)?(?P<unit>minute|hour|day)s?\s*$", re.I)
_HOURS = re.compile(r"^\s*(?P<oh>\d{1,2}):(?P<om>\d{2})\s*-\s*(?P<ch>\d{1,2}):(?P<cm>\d{2})\s*$")


@dataclass(frozen=True)
class Duration:
    """An SLA length as admins write it: ``"2 business days"``, ``"4 hours"``, ``"30 minutes"``."""

    amount: int
    unit: str  # minutes, hours, days
    business: bool = False

    @classmethod
    def parse(cls, text: str) -> "Duration":
        found = _DURATION.match(text) if isinstance(text, str) else None
        if not found:
            raise ValueError(
                f'not a duration (got {json.dumps(text)}); write e.g. "2 business days", '
                '"4 business hours", "3 days" or "30 minutes"'
            )
        return cls(int(found["n"]), found["unit"].lower() + "s", bool(found["business"]))

    def __str__(self) -> str:
        unit = self.unit if self.amount != 1 else self.unit[:-1]
        return f"{self.amount} {'business ' if self.business else ''}{unit}"

    @property
    def elapsed(self) -> timedelta:
        """The length as a plain time span (days as 24 h): for hours and minutes."""
        return timedelta(**{self.unit: self.amount})


def parse_hours(text: str) -> tuple[int, int]:
    """``"09:00-17:30"`` → opening and closing minute of the day (closing up to 24:00)."""
    found = _HOURS.match(text) if isinstance(text, str) else None
    if found:
        opens = int(found["oh"]) * 60 + int(found["om"])
        closes = int(found["ch"]) * 60 + int(found["cm"])
        if int(found["om"]) < 60 and int(found["cm"]) < 60 and 0 <= opens < closes <= 24 * 60:
            return opens, closes
    raise ValueError(
        f'not business hours (got {json.dumps(text)}); write "HH:MM-HH:MM" with the opening '
        'before the closing, e.g. "09:00-17:00" ("00:00-24:00" for the whole day)'
    )


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f'unknown time zone {json.dumps(name)}; use an IANA name such as "Europe/Berlin" or "America/New_York"'
        ) from None


@dataclass(frozen=True)
class BusinessCalendar:
    """When a team works: a time zone, working days, daily hours and holidays."""

    time_zone: str = "UTC"
    days: frozenset[int] = frozenset(range(7))  # 0 = Monday
    opens: int = 0  # minute of the day
    closes: int = 24 * 60
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        zone(self.time_zone)
        if not self.days:
            raise ValueError("a calendar needs at least one working day")
        if not 0 <= self.opens < self.closes <= 24 * 60:
            raise ValueError("business hours must open before they close, within one day")

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.time_zone)

    # -- days and windows ------------------------------------------------------------------

    def local(self, at: datetime) -> datetime:
        return _aware(at).astimezone(self.tz)

    def is_business_day(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.holidays

    def at_minute(self, day: date, minute: int | float) -> datetime:
        """The instant (UTC) of a local wall-clock minute of ``day``; 24:00 is the next midnight."""
        wall = datetime.combine(day, time(0)) + timedelta(minutes=minute)
        # A wall time inside a spring-forward gap is read with the offset before it.
        return wall.replace(tzinfo=self.tz).astimezone(timezone.utc)

    def window(self, day: date) -> tuple[datetime, datetime]:
        """Opening and closing instants of ``day`` (whether or not it is a working day)."""
        return self.at_minute(day, self.opens), self.at_minute(day, self.closes)

    def business_days(self, start: date) -> Iterator[date]:
        """Working days from ``start`` on (inclusive)."""
        for offset in range(MAX_SCAN_DAYS):
            day = start + timedelta(days=offset)
            if self.is_business_day(day):
                yield day
        raise ValueError(f"calendar {self.time_zone} has no working day within {MAX_SCAN_DAYS} days")

    def end_of_day(self, day: date) -> datetime:
        """The close of business on ``day``: the deadline of "by <date>"."""
        return self.window(day)[1]

    def is_open(self, at: datetime) -> bool:
        day = self.local(at).date()
        opens, closes = self.window(day)
        return self.is_business_day(day) and opens <= _aware(at) < closes

    # -- arithmetic --------------------------------------------------------------------------

    def add(self, start: datetime, duration: Duration) -> datetime:
        """``start`` plus ``duration`` (see the module docstring for what that means)."""
        start = _aware(start)
        if duration.business:
            if duration.unit == "days":
                return self.add_business_days(start, duration.amount)
            return self.add_business_time(start, duration.elapsed)
        if duration.unit == "days":
            wall = self.local(start).replace(tzinfo=None) + timedelta(days=duration.amount)
            return wall.replace(tzinfo=self.tz).astimezone(timezone.utc)
        return start + duration.elapsed

    def add_business_time(self, start: datetime, span: timedelta) -> datetime:
        """The instant when ``span`` of open business time has passed since ``start``."""
        start = _aware(start)
        remaining = span
        for day in self.business_days(self.local(start).date() - timedelta(days=1)):
            opens, closes = self.window(day)
            begin = max(start, opens)
            if begin >= closes:
                continue
            if remaining <= closes - begin:
                return begin + remaining
            remaining -= closes - begin
        raise AssertionError("unreachable")  # business_days raises first

    def add_business_days(self, start: datetime, count: int) -> datetime:
        start = _aware(start)
        local = self.local(start)
        first: date | None = None
        offset = 0.0  # wall-clock minutes after opening
        for day in self.business_days(local.date()):
            opens, closes = self.window(day)
            if start < opens:
                first = day
                break
            if start < closes:
                first = day
                wall = local.replace(tzinfo=None) - datetime.combine(day, time(0))
                offset = max(0.0, wall.total_seconds() / 60 - self.opens)
                break
        assert first is not None
        if count == 0:
            return max(start, self.window(first)[0])
        days = self.business_days(first)
        if offset == 0:
            # Started at or before opening: N whole working days end at the Nth close.
            for _ in range(count):
                target = next(days)
            return self.end_of_day(target)
        for _ in range(count + 1):
            target = next(days)
        return min(self.at_minute(target, self.opens + offset), self.end_of_day(target))

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Open business time between two instants (zero if ``end`` is not after ``start``)."""
        start, end = _aware(start), _aware(end)
        total = timedelta(0)
        if end <= start:
            return total
        day = self.local(start).date() - timedelta(days=1)
        last = self.local(end).date()
        while day <= last:
            if self.is_business_day(day):
                opens, closes = self.window(day)
                lo, hi = max(start, opens), min(end, closes)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total

    def elapsed(self, start: datetime, end: datetime, duration: Duration) -> bool:
        """Whether ``duration`` has passed between ``start`` and ``end``."""
        return _aware(end) >= self.add(start, duration)


ALWAYS = BusinessCalendar()  # UTC, every day, all day: plain calendar arithmetic


def weekday(name: str) -> int:
    """``"mon"`` → 0 ... ``"sun"`` → 6."""
    key = name.strip().lower() if isinstance(name, str) else ""
    if key not in WEEKDAYS:
        raise ValueError(f"unknown weekday {json.dumps(name)}; use mon, tue, wed, thu, fri, sat or sun")
    return WEEKDAYS.index(key)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)
