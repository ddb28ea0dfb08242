"""The progress of a long ``syncd once``: counts, the estimate, the wait line, the pace of lines (clocks injected)."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

from syncd.progress import PlainLines, Progress, TerminalLine, duration_text

START = datetime(2026, 3, 4, 13, 15, 0, tzinfo=timezone.utc)


class Clocks:
    def __init__(self) -> None:
        self.mono = 500.0
        self.now = START

    def monotonic(self) -> float:
        return self.mono

    def wall(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.now += timedelta(seconds=seconds)


def progress(clocks: Clocks, *, live: bool, interval: float = 30.0) -> tuple[Progress, list[str]]:
    lines: list[str] = []
    return Progress(lines.append, live=live, interval=interval, monotonic=clocks.monotonic, wall=clocks.wall), lines


def at(hours_ago: float) -> datetime:
    return START - timedelta(hours=hours_ago)


def test_off_a_terminal_a_line_comes_at_a_steady_interval_whatever_the_number_of_pages():
    clocks = Clocks()
    p, lines = progress(clocks, live=False, interval=30.0)
    for _ in range(20):  # a page every 5 s for 100 s
        clocks.advance(5)
        p.page("zendesk", 100, 3, [at(10)])
    assert len(lines) == 3  # at 30, 60 and 90 seconds
    assert lines[0].startswith("read 600 records · planned 18 writes")


def test_a_short_run_off_a_terminal_prints_nothing():
    clocks = Clocks()
    p, lines = progress(clocks, live=False)
    clocks.advance(2)
    p.page("zendesk", 10, 1, [at(1)])
    p.delivering(1)
    p.sent(delivered=1)
    p.finish()
    assert lines == []


def test_the_total_is_estimated_from_how_far_the_feed_has_come_and_the_eta_from_the_pace():
    clocks = Clocks()
    p, lines = progress(clocks, live=True)
    # The feed starts 100 hours back; after 1,000 records it has reached 75 hours back: a quarter read.
    p.page("zendesk", 500, 0, [at(100), at(90)])
    clocks.mono += 50  # (the wall clock kept still, to keep the figures round)
    p.page("zendesk", 500, 0, [at(80), at(75)])
    assert p.estimated_records() == 4000
    # 1,000 records in 50 s: 3,000 to go at 20 a second.
    assert p.eta() == 150.0
    assert lines[-1] == "read 1,000 of ~4,000 records · planned 0 writes · about 2m30s left"


def test_a_finished_feed_counts_what_it_read_and_delivery_counts_against_the_outbox():
    clocks = Clocks()
    p, lines = progress(clocks, live=True)
    p.page("linear", 40, 10, [at(5), at(0.001)])
    p.feed_done("linear")
    p.delivering(12)  # the 10 planned and 2 from an earlier run
    clocks.advance(10)
    p.sent(delivered=3)
    clocks.advance(1)
    p.sent(failed=1)
    # 44 steps in 11 s: 8 writes to go at 4 a second.
    assert p.estimated_records() == 40
    assert lines[-1] == "read 40 records · planned 10 writes · delivered 3 of 12 (1 failed) · about 2s left"


def test_a_rate_limit_wait_shows_its_end_and_goes_when_work_resumes():
    clocks = Clocks()
    p, lines = progress(clocks, live=True)
    p.page("github", 10, 2, [at(1)])
    p.waiting("GitHub", 0.2)  # too short to mention
    assert "waiting" not in lines[-1]
    p.waiting("GitHub", until=START + timedelta(minutes=50))
    assert lines[-1].endswith("waiting for GitHub's rate limit until 14:05 UTC")
    p.waiting("Zendesk", 90)  # slept in place: its end is now + 90 s, shown to the minute after
    assert "waiting for Zendesk's rate limit until 13:17 UTC" in lines[-1]
    clocks.advance(1)
    p.page("github", 10, 0, [at(0.5)])
    assert "waiting" not in lines[-1]


def test_on_a_terminal_the_line_is_redrawn_in_place_and_ended_before_the_summary():
    stream = io.StringIO()
    clocks = Clocks()
    p = Progress(TerminalLine(stream), live=True, monotonic=clocks.monotonic, wall=clocks.wall)
    p.page("zendesk", 5, 1, [at(2)])
    clocks.advance(1)
    p.page("zendesk", 5, 1, [at(1)])
    p.finish()
    # Two pages, then the final state drawn once more and ended with a newline for the summary.
    assert stream.getvalue().count("\r\x1b[K") == 3
    assert stream.getvalue().endswith("\r\x1b[Kread 10 records · planned 2 writes\n")


def test_plain_lines_are_marked_as_progress():
    stream = io.StringIO()
    PlainLines(stream)("read 5 records")
    assert stream.getvalue() == "progress: read 5 records\n"


def test_durations_read_as_people_say_them():
    assert [duration_text(s) for s in (4.4, 75, 3600 + 120)] == ["4s", "1m15s", "1h02m"]
