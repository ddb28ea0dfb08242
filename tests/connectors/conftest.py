"""A clock the sandbox fakes read, moved on by the tests instead of waiting."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest


class Clock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 21, 12, 0, 0, tzinfo=timezone.utc))
