"""Business hours and shifts: schedules across time zones, holidays and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.hours import Schedule, describe
from tests.wording import assert_names_the_time

KYIV = ZoneInfo("Europe/Kyiv")
BERLIN = ZoneInfo("Europe/Berlin")


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)  # type: ignore[misc]


def desk(zone: str = "Europe/Kyiv") -> Schedule:
    return Schedule.parse(
        zone,
        {"mon-fri": "09:00-18:00", "sat": "10:00-14:00"},
        ["2026-12-25", "2026-12-31..2027-01-02"],
    )


def test_open_and_closed_through_a_week() -> None:
    hours = desk()
    # Monday 2026-11-23
    assert not hours.is_open(local(KYIV, 2026, 11, 23, 8, 59))
    assert hours.is_open(local(KYIV, 2026, 11, 23, 9, 0))
    assert hours.is_open(local(KYIV, 2026, 11, 23, 17, 59))
    assert not hours.is_open(local(KYIV, 2026, 11, 23, 18, 0))
    assert hours.is_open(local(KYIV, 2026, 11, 28, 12, 0))  # Saturday
    assert not hours.is_open(local(KYIV, 2026, 11, 29, 12, 0))  # Sunday
    # Friday evening: Saturday 10:00; Saturday afternoon: Monday 09:00
    assert hours.next_opening(local(KYIV, 2026, 11, 27, 19, 0)) == local(KYIV, 2026, 11, 28, 10)
    assert hours.next_opening(local(KYIV, 2026, 11, 28, 15, 0)) == local(KYIV, 2026, 11, 30, 9)
    # open now: now
    now = local(KYIV, 2026, 11, 23, 12, 0)
    assert hours.next_opening(now) == now


def test_holidays_are_skipped_ranges_included() -> None:
    hours = desk()
    assert not hours.is_open(local(KYIV, 2026, 12, 25, 12, 0))  # a Friday
    assert hours.next_opening(local(KYIV, 2026, 12, 24, 19, 0)) == local(KYIV, 2026, 12, 26, 10)
    # 31 Dec to 2 Jan closed; Saturday 3 Jan is a normal Saturday
    assert hours.next_opening(local(KYIV, 2026, 12, 30, 18, 30)) == local(KYIV, 2027, 1, 4, 9)


def test_the_same_instant_is_open_in_one_zone_and_closed_in_another() -> None:
    instant = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)  # 09:30 in Kyiv, 02:30 in New York
    assert desk("Europe/Kyiv").is_open(instant)
    assert not desk("America/New_York").is_open(instant)
    assert desk("America/New_York").next_opening(instant) == datetime(
        2026, 11, 23, 14, 0, tzinfo=UTC
    )
    # Tokyo's Tuesday 09:00 comes while it is still Monday in UTC
    assert desk("Asia/Tokyo").next_opening(datetime(2026, 11, 23, 12, 0, tzinfo=UTC)) == (
        datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    )


def test_business_time_skips_nights_weekends_and_holidays() -> None:
    hours = desk()
    friday = local(KYIV, 2026, 11, 27, 17, 50)
    # 30 business minutes from Friday 17:50: 10 on Friday, 20 on Saturday morning
    assert hours.add(friday, timedelta(minutes=30)) == local(KYIV, 2026, 11, 28, 10, 20)
    assert hours.between(friday, local(KYIV, 2026, 11, 28, 10, 20)) == timedelta(minutes=30)
    # Saturday 13:00 + 2 h: one hour on Saturday, one on Monday
    assert hours.add(local(KYIV, 2026, 11, 28, 13), timedelta(hours=2)) == local(
        KYIV, 2026, 11, 30, 10
    )


def test_opening_hours_keep_their_wall_clock_across_dst_changes() -> None:
    hours = Schedule.parse("Europe/Berlin", {"mon-fri": "09:00-18:00"})
    # clocks go forward on Sunday 2026-03-29: 09:00 is 08:00 UTC before, 07:00 after
    assert hours.next_opening(local(BERLIN, 2026, 3, 27, 19)) == datetime(
        2026, 3, 30, 7, 0, tzinfo=UTC
    )
    assert hours.next_opening(local(BERLIN, 2026, 3, 26, 19)) == datetime(
        2026, 3, 27, 8, 0, tzinfo=UTC
    )
    # a deadline counted over the weekend of the change: Friday 17:30 + 1 h
    assert hours.add(local(BERLIN, 2026, 3, 27, 17, 30), timedelta(hours=1)) == local(
        BERLIN, 2026, 3, 30, 9, 30
    )


def test_a_shift_that_spans_a_clock_change_lasts_what_people_work() -> None:
    # a night shift on Saturday 2026-10-24, clocks go back at 03:00 on Sunday
    night = Schedule.parse("Europe/Berlin", {"sat": "22:00-06:00"})
    start = local(BERLIN, 2026, 10, 24, 22)
    assert night.between(start, start + timedelta(hours=12)) == timedelta(hours=9)
    # the spring one is an hour short
    spring = local(BERLIN, 2026, 3, 28, 22)
    assert night.between(spring, spring + timedelta(hours=12)) == timedelta(hours=7)
    whole = Schedule.parse("Europe/Berlin", {"sun": "00:00-24:00"})
    sunday = local(BERLIN, 2026, 3, 29, 0)
    assert whole.between(sunday, sunday + timedelta(days=2)) == timedelta(hours=23)


def test_overnight_hours_and_adjacent_days_join_up() -> None:
    hours = Schedule.parse("UTC", {"mon-sun": "00:00-24:00"}, ["2026-11-25"])
    monday = datetime(2026, 11, 23, 12, tzinfo=UTC)
    intervals = hours.intervals_from(monday)
    assert next(intervals) == (
        datetime(2026, 11, 23, 0, tzinfo=UTC),
        datetime(2026, 11, 25, 0, tzinfo=UTC),
    )


@settings(max_examples=200, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)
    ),
    minutes=st.integers(min_value=0, max_value=60 * 24 * 10),
)
def test_adding_business_time_and_measuring_it_agree(start: datetime, minutes: int) -> None:
    hours = Schedule.parse(
        "Europe/Berlin",
        {"mon-fri": "09:00-13:00, 14:00-18:00", "sat": "22:00-02:00"},
        ["2026-12-25"],
    )
    end = hours.add(start, timedelta(minutes=minutes))
    assert end is not None and end >= start
    assert hours.between(start, end) == timedelta(minutes=minutes)
    if minutes:
        assert hours.is_open(end - timedelta(microseconds=1))


def test_opening_times_read_in_the_customers_language() -> None:
    at = local(KYIV, 2026, 11, 30, 9)
    for language in ("en", "ru", "uk", "de"):
        assert_names_the_time(describe(at, KYIV, language), at, KYIV, language)
    # in each language of its own: Russian and Ukrainian name November differently
    assert len({describe(at, KYIV, language) for language in ("en", "ru", "uk")}) == 3
    # an evening hour on a 12-hour clock says which half of the day
    evening = local(KYIV, 2026, 12, 1, 18, 30)
    assert_names_the_time(describe(evening, KYIV, "en"), evening, KYIV, "en")
    # a language babel does not know falls back to the default
    assert describe(at, KYIV, "xx", "en") == describe(at, KYIV, "en")


@pytest.mark.parametrize(
    ("section", "where", "reason"),
    [
        ('[hours]\nschedule = { mon-fri = "9-18" }', "hours.schedule.mon-fri", "not a time range"),
        ('[hours]\nschedule = { mon = "09:00-25:00" }', "hours.schedule.mon", "does not exist"),
        (
            '[hours]\nschedule = { mon-fri = "09:00-18:00", fri = "10:00-12:00" }',
            "hours.schedule.fri",
            "fri is already given by 'mon-fri'",
        ),
        ('[hours]\nschedule = { monday = "09:00-18:00" }', "hours.schedule.monday", "not a day"),
        ('[hours]\nholidays = ["2026-13-01"]', "hours.holidays", "not a date"),
        (
            '[hours]\nalways_open = true\nschedule = { mon = "09:00-18:00" }',
            "hours.always_open",
            "never apply",
        ),
        ('[hours]\ntimezone = "Mars/Olympus"', "hours.timezone", "unknown time zone"),
        (
            '[[operators]]\nid = "anna"\nname = "Anna"\nshifts = { tue = "18:00-18:00" }',
            "operators[0].shifts.tue",
            "is empty",
        ),
    ],
)
def test_a_bad_schedule_fails_at_start_naming_the_key(
    section: str, where: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(section)
    text = str(error.value)
    assert where in text and reason in text, text
