"""Business calendars: time zones, working hours, holidays and DST."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from mappings.calendar import ALWAYS, BusinessCalendar, Duration, parse_hours, weekday

UTC = timezone.utc
WEEKDAYS = frozenset(range(5))
NEW_YORK = BusinessCalendar("America/New_York", WEEKDAYS, 9 * 60, 17 * 60)
BERLIN = BusinessCalendar(
    "Europe/Berlin", WEEKDAYS, 9 * 60, 17 * 60, frozenset({date(2024, 12, 25), date(2024, 12, 26)})
)


def d(text: str) -> Duration:
    return Duration.parse(text)


def test_friday_evening_escalation_with_two_business_days_is_due_at_tuesday_close():
    # Friday 2024-03-08 18:00 EST, after hours; the DST change is that weekend (Sun 2024-03-10).
    friday_evening = datetime(2024, 3, 8, 23, 0, tzinfo=UTC)
    due = NEW_YORK.add(friday_evening, d("2 business days"))
    assert NEW_YORK.local(due).replace(tzinfo=None) == datetime(2024, 3, 12, 17, 0)
    assert due == datetime(2024, 3, 12, 21, 0, tzinfo=UTC)  # EDT: UTC-4 now, not -5


def test_business_day_inside_hours_ends_at_the_same_local_time_across_dst():
    friday_3pm = datetime(2024, 3, 8, 20, 0, tzinfo=UTC)  # 15:00 EST
    due = NEW_YORK.add(friday_3pm, d("1 business day"))
    assert NEW_YORK.local(due).replace(tzinfo=None) == datetime(2024, 3, 11, 15, 0)
    assert due - friday_3pm == timedelta(hours=71)  # one real hour lost to the spring change


def test_wednesday_morning_plus_two_business_days_is_friday_same_time():
    wednesday = datetime(2024, 6, 12, 8, 30, tzinfo=UTC)  # 10:30 in Berlin (CEST)
    assert BERLIN.local(BERLIN.add(wednesday, d("2 business days"))).replace(tzinfo=None) == datetime(
        2024, 6, 14, 10, 30
    )


def test_business_hours_skip_the_night_and_the_weekend():
    friday_4pm = datetime(2024, 3, 8, 21, 0, tzinfo=UTC)  # 16:00 EST
    due = NEW_YORK.add(friday_4pm, d("2 business hours"))
    assert NEW_YORK.local(due).replace(tzinfo=None) == datetime(2024, 3, 11, 10, 0)
    assert NEW_YORK.business_time_between(friday_4pm, due) == timedelta(hours=2)


def test_holidays_do_not_count():
    christmas_eve = datetime(2024, 12, 24, 15, 0, tzinfo=UTC)  # Tuesday 16:00 in Berlin
    due = BERLIN.add(christmas_eve, d("1 business day"))
    # 25th and 26th are holidays: Friday the 27th at 16:00.
    assert BERLIN.local(due).replace(tzinfo=None) == datetime(2024, 12, 27, 16, 0)
    assert BERLIN.business_time_between(christmas_eve, due) == timedelta(hours=8)


def test_calendar_days_keep_the_wall_clock_across_dst():
    saturday = datetime(2024, 3, 9, 15, 0, tzinfo=UTC)  # 10:00 EST
    due = NEW_YORK.add(saturday, d("2 days"))
    assert NEW_YORK.local(due).replace(tzinfo=None) == datetime(2024, 3, 11, 10, 0)
    assert due - saturday == timedelta(hours=47)
    # Autumn: the wall clock gains an hour.
    berlin_sat = datetime(2024, 10, 26, 8, 0, tzinfo=UTC)  # 10:00 CEST
    assert BERLIN.add(berlin_sat, d("1 day")) - berlin_sat == timedelta(hours=25)


def test_elapsed_hours_are_real_hours():
    start = datetime(2024, 3, 10, 5, 0, tzinfo=UTC)
    assert NEW_YORK.add(start, d("4 hours")) == start + timedelta(hours=4)
    assert ALWAYS.add(start, d("30 minutes")) == start + timedelta(minutes=30)


def test_starting_before_opening_counts_whole_days():
    monday_early = datetime(2024, 6, 10, 5, 0, tzinfo=UTC)  # 07:00 Berlin
    due = BERLIN.add(monday_early, d("1 business day"))
    assert BERLIN.local(due).replace(tzinfo=None) == datetime(2024, 6, 10, 17, 0)


def test_end_of_day_and_is_open():
    assert BERLIN.end_of_day(date(2024, 1, 15)) == datetime(2024, 1, 15, 16, 0, tzinfo=UTC)
    assert BERLIN.is_open(datetime(2024, 1, 15, 10, 0, tzinfo=UTC))
    assert not BERLIN.is_open(datetime(2024, 1, 13, 10, 0, tzinfo=UTC))  # Saturday
    assert not BERLIN.is_open(datetime(2024, 12, 25, 10, 0, tzinfo=UTC))  # holiday


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2 business days", Duration(2, "days", True)),
        ("1 business hour", Duration(1, "hours", True)),
        ("30 minutes", Duration(30, "minutes")),
        ("7 Days", Duration(7, "days")),
    ],
)
def test_duration_parse(text, expected):
    assert Duration.parse(text) == expected


@pytest.mark.parametrize("text", ["2d", "two days", "2 weeks", "-1 days", "2 business"])
def test_duration_parse_refuses(text):
    with pytest.raises(ValueError, match="not a duration"):
        Duration.parse(text)


def test_hours_and_weekdays():
    assert parse_hours("08:30-24:00") == (510, 1440)
    with pytest.raises(ValueError):
        parse_hours("17:00-09:00")
    assert weekday("Sun") == 6
    with pytest.raises(ValueError):
        weekday("monday-ish")
