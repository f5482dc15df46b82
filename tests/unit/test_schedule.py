"""orders-scheduler: EventBridge Scheduler's expressions, and when the scheduler invokes generate_orders.

Expected times are read off a calendar (UTC), not computed by the code under test.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from orders_core.generator.producer import GenerateRequest
from orders_local.scheduler import (
    Schedule,
    ScheduleError,
    Scheduler,
    ScheduleStatus,
    parse_schedule,
    schedule_input,
)

# Wednesday 25 November 2026, 14:20:30 UTC.
START = datetime(2026, 11, 25, 14, 20, 30, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def first(schedule: Schedule, count: int, start: datetime = START) -> list[datetime]:
    return list(itertools.islice(schedule.occurrences(start), count))


WEEK_AFTER = "2026-11-30 18:00"  # Monday
# (expression, start, its first occurrences); for the expressions in FINITE, all of them.
ACCEPTED: list[tuple[str, datetime, list[str]]] = [
    # A rate runs at once, then every period.
    # A rate's occurrences are multiples of its period since the epoch: the first is the one started in (due now).
    ("rate(1 minute)", START, ["2026-11-25 14:20:00", "2026-11-25 14:21:00", "2026-11-25 14:22:00"]),
    ("rate(5 minutes)", START, ["2026-11-25 14:20:00", "2026-11-25 14:25:00"]),
    ("rate(1 hour)", START, ["2026-11-25 14:00:00", "2026-11-25 15:00:00"]),
    ("rate(2 days)", START, ["2026-11-25 00:00:00", "2026-11-27 00:00:00"]),  # day 20,782 since 1970-01-01
    ("cron(0 10 * * ? *)", START, ["2026-11-26 10:00", "2026-11-27 10:00", "2026-11-28 10:00"]),
    ("cron(0/15 * * * ? *)", START, ["2026-11-25 14:30", "2026-11-25 14:45", "2026-11-25 15:00"]),
    ("cron(5,35 14 * * ? *)", START, ["2026-11-25 14:35", "2026-11-26 14:05", "2026-11-26 14:35"]),
    ("cron(21-22 14 * * ? *)", START, ["2026-11-25 14:21", "2026-11-25 14:22", "2026-11-26 14:21"]),
    (
        "cron(0 18 ? * MON-FRI *)",
        START,
        ["2026-11-25 18:00", "2026-11-26 18:00", "2026-11-27 18:00", "2026-11-30 18:00"],
    ),
    ("cron(0 18 ? * 2-6 *)", START, ["2026-11-25 18:00", "2026-11-26 18:00", "2026-11-27 18:00", "2026-11-30 18:00"]),
    ("cron(0 10 ? * sun *)", START, ["2026-11-29 10:00", "2026-12-06 10:00"]),  # names in any case
    ("cron(0 10 ? * 1 *)", START, ["2026-11-29 10:00", "2026-12-06 10:00"]),  # 1 is Sunday
    ("cron(0 8 1 * ? *)", START, ["2026-12-01 08:00", "2027-01-01 08:00", "2027-02-01 08:00"]),
    ("cron(0 8 1 JAN,JUL ? *)", START, ["2027-01-01 08:00", "2027-07-01 08:00"]),
    ("cron(0 10 1/10 * ? *)", START, ["2026-12-01 10:00", "2026-12-11 10:00", "2026-12-21 10:00", "2026-12-31 10:00"]),
    ("cron(0 10 L * ? *)", START, ["2026-11-30 10:00", "2026-12-31 10:00", "2027-01-31 10:00", "2027-02-28 10:00"]),
    # LW: the last weekday; 31 January and 31 October 2027 are Sundays.
    ("cron(0 10 LW * ? *)", START, ["2026-11-30 10:00", "2026-12-31 10:00", "2027-01-29 10:00"]),
    ("cron(0 10 LW OCT ? 2027)", START, ["2027-10-29 10:00"]),
    # nW: the weekday nearest day n, never in another month. 1 May 2027 is a Saturday, 16 May a Sunday.
    ("cron(0 10 1W * ? *)", at("2027-04-02"), ["2027-05-03 10:00", "2027-06-01 10:00", "2027-07-01 10:00"]),
    ("cron(0 10 15W 5 ? 2027)", START, ["2027-05-14 10:00"]),
    ("cron(0 10 16W 5 ? 2027)", START, ["2027-05-17 10:00"]),
    ("cron(0 10 31W 1 ? 2027)", START, ["2027-01-29 10:00"]),
    # n#k: the k-th weekday n of the month (6 is Friday); nL: the month's last; L alone: Saturday.
    ("cron(0 10 ? * 6#3 *)", START, ["2026-12-18 10:00", "2027-01-15 10:00", "2027-02-19 10:00"]),
    ("cron(0 10 ? * FRI#1 *)", START, ["2026-12-04 10:00", "2027-01-01 10:00"]),
    ("cron(0 10 ? * 6L *)", START, ["2026-11-27 10:00", "2026-12-25 10:00", "2027-01-29 10:00"]),
    ("cron(0 10 ? * L *)", START, ["2026-11-28 10:00", "2026-12-05 10:00", "2026-12-12 10:00"]),
    ("cron(0 12 29 2 ? *)", START, ["2028-02-29 12:00", "2032-02-29 12:00"]),
    ("cron(0 0 1 1 ? 2030-2031)", START, ["2030-01-01 00:00", "2031-01-01 00:00"]),  # and no more
    ("cron(0 0 30 2 ? *)", START, []),  # never
    ("at(2027-01-01T09:30:00)", START, ["2027-01-01 09:30"]),
    ("at(2026-01-01T09:30:00)", START, []),  # already past
    ("  cron(0 10 * * ? *)  ", START, ["2026-11-26 10:00"]),
]
FINITE = {
    "cron(0 10 LW OCT ? 2027)",
    "cron(0 10 15W 5 ? 2027)",
    "cron(0 10 16W 5 ? 2027)",
    "cron(0 10 31W 1 ? 2027)",
    "cron(0 0 1 1 ? 2030-2031)",
    "cron(0 0 30 2 ? *)",
    "at(2027-01-01T09:30:00)",
    "at(2026-01-01T09:30:00)",
}


@pytest.mark.parametrize(("expression", "start", "expected"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_schedule_expressions_run_when_eventbridge_scheduler_would(
    expression: str, start: datetime, expected: list[str]
) -> None:
    count = len(expected) + (expression in FINITE)  # one more of a finite schedule: there is none
    assert first(parse_schedule(expression), count, start) == [at(e) for e in expected]


REFUSED = [
    "",
    "0 10 * * ? *",  # no cron(…) around it
    "rate(1 minutes)",  # AWS: singular for 1
    "rate(5 minute)",  # and plural above
    "rate(0 minutes)",
    "rate(-5 minutes)",
    "rate(1.5 hours)",
    "rate(30 seconds)",
    "cron(0 10 * * *)",  # Unix cron's five fields
    "cron(0 10 * * ? * *)",  # seven
    "cron(0 10 * * * *)",  # day-of-month and day-of-week both given
    "cron(0 10 1 * MON *)",
    "cron(0 10 ? * ? *)",  # both left open
    "cron(60 10 * * ? *)",
    "cron(0 24 * * ? *)",
    "cron(0 10 0 * ? *)",
    "cron(0 10 32 * ? *)",
    "cron(0 10 * 13 ? *)",
    "cron(0 10 * JANUARY ? *)",
    "cron(0 10 ? * 0 *)",  # days of the week are 1-7
    "cron(0 10 ? * 8 *)",
    "cron(0 10 * * ? 1969)",
    "cron(0 10 * * ? 2200)",
    "cron(? 10 * * ? *)",  # ? only in the two day fields
    "cron(0 L * * ? *)",
    "cron(0 10 * * ? L)",
    "cron(0 10 ? * 3#1,6#3 *)",  # one # expression only
    "cron(0 10 ? * 6#6 *)",
    "cron(0 10 ? * MON/2 *)",  # no increments in day-of-week
    "cron(0 10 32W * ? *)",
    "cron(5-1 10 * * ? *)",  # a range that runs backwards
    "cron(0/0 10 * * ? *)",
    "cron(0,,5 10 * * ? *)",
    "at(2026-02-30T10:00:00)",
    "at(2026-02-01 10:00:00)",
]


@pytest.mark.parametrize("expression", REFUSED)
def test_expressions_eventbridge_scheduler_refuses_are_refused(expression: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(expression)


# ------------------------------------------------------------------------------------------ the loop


class FakeTime:
    """A clock that moves only when the scheduler waits; it stops the scheduler at ``end``."""

    def __init__(self, end: datetime) -> None:
        self.now = START
        self.end = end

    def wait(self, seconds: float) -> bool:
        if seconds == float("inf") or self.now + timedelta(seconds=seconds) > self.end:
            return True
        self.now += timedelta(seconds=seconds)
        return False


def run(expression: str, minutes: float, up: Callable[[datetime], bool]) -> tuple[list[datetime], list[datetime]]:
    """(every invocation, the successful ones) of the scheduler over ``minutes``; ``up(t)``: is the function up."""
    clock = FakeTime(START + timedelta(minutes=minutes))
    calls: list[datetime] = []

    def invoke(occurrence: datetime) -> bool:
        calls.append(clock.now)
        return up(clock.now)

    Scheduler(parse_schedule(expression), invoke, lambda: clock.now, clock.wait, 0.5, 8.0).run()
    return calls, [t for t in calls if up(t)]


def test_each_occurrence_invokes_the_function_once() -> None:
    calls, _ = run("cron(0/15 * * * ? *)", 60, lambda t: True)
    assert calls == [at("2026-11-25 14:30"), at("2026-11-25 14:45"), at("2026-11-25 15:00"), at("2026-11-25 15:15")]


def test_a_function_that_is_down_is_retried_with_backoff_until_it_answers() -> None:
    # GIVEN generate_orders down for the first 20 seconds of a schedule that fires at 14:30
    def up(t: datetime) -> bool:
        return t >= at("2026-11-25 14:30:20")

    # WHEN the scheduler invokes it THEN it retries after 0.5, 1, 2, 4, 8, 8 … s (capped), and once it
    # answers, that occurrence is done: one successful invocation per occurrence
    calls, done = run("cron(0/15 * * * ? *)", 14, up)
    waits = [(b - a).total_seconds() for a, b in itertools.pairwise(calls)]
    assert waits == [0.5, 1, 2, 4, 8, 8]
    assert done == [at("2026-11-25 14:30:23.5")]


def test_an_outage_longer_than_the_period_skips_occurrences_instead_of_piling_them_up() -> None:
    # GIVEN a schedule every minute and generate_orders down from 14:20:30 until 14:23:00
    def up(t: datetime) -> bool:
        return t >= at("2026-11-25 14:23:00")

    # WHEN the scheduler runs for five minutes
    calls, done = run("rate(1 minute)", 5, up)
    # THEN every occurrence was tried, retries stopped as the next one came due, none invoked twice
    assert {at("2026-11-25 14:20:30"), at("2026-11-25 14:21:00"), at("2026-11-25 14:22:00")} <= set(calls)
    assert done == [at(f"2026-11-25 {t}") for t in ("14:23:00", "14:24:00", "14:25:00")]
    assert all(b > a for a, b in itertools.pairwise(calls))


def test_occurrences_that_pass_during_a_slow_invocation_are_skipped() -> None:
    clock = FakeTime(START + timedelta(minutes=3.5))
    calls: list[datetime] = []

    def slow_invoke(occurrence: datetime) -> bool:  # takes 90 s, longer than the period
        calls.append(clock.now)
        clock.now += timedelta(seconds=90)
        return True

    Scheduler(parse_schedule("rate(1 minute)"), slow_invoke, lambda: clock.now, clock.wait, 0.5, 8.0).run()
    assert calls == [at("2026-11-25 14:20:30"), at("2026-11-25 14:22:00"), at("2026-11-25 14:24:00")]  # not 14:21


def test_a_restarted_scheduler_names_the_occurrence_it_was_in_so_its_orders_are_the_same() -> None:
    # GIVEN a rate schedule that ran its occurrence at 14:20:30, then the scheduler restarted at 14:23:40
    schedule = parse_schedule("rate(5 minutes)")
    before, after = first(schedule, 2, START), first(schedule, 2, at("2026-11-25 14:23:40"))
    # THEN the restarted one runs the same occurrence again (the same seed: the ingest stores its orders once)
    # and then the same next one, rather than a new occurrence at 14:23:40 and every five minutes from there
    assert before == after == [at("2026-11-25 14:20:00"), at("2026-11-25 14:25:00")]


def test_a_one_time_schedule_runs_once_and_keeps_the_process_up() -> None:
    clock = FakeTime(START + timedelta(days=400))
    calls: list[datetime] = []
    Scheduler(
        parse_schedule("at(2026-12-01T00:00:00)"),
        lambda occurrence: calls.append(clock.now) is None,
        lambda: clock.now,
        clock.wait,
        0.5,
        8.0,
    ).run()
    assert calls == [at("2026-12-01 00:00")]


def test_every_try_of_an_occurrence_names_that_occurrence() -> None:
    # GIVEN generate_orders failing until 14:30:20 on a schedule that fires at 14:30 and 14:45
    clock = FakeTime(START + timedelta(minutes=30))
    occurrences: list[datetime] = []

    def invoke(occurrence: datetime) -> bool:
        occurrences.append(occurrence)
        return clock.now >= at("2026-11-25 14:30:20")

    Scheduler(parse_schedule("cron(0/15 * * * ? *)"), invoke, lambda: clock.now, clock.wait, 0.5, 8.0).run()
    # THEN each retry carried the occurrence it retries, so each produces the same orders
    assert occurrences == [at("2026-11-25 14:30")] * 7 + [at("2026-11-25 14:45")]


def test_the_input_of_an_occurrence_is_what_the_sam_schedule_sends() -> None:
    assert schedule_input(10, "rate(1 minute)", at("2026-12-04 15:00")) == {
        "count": 10,
        "occurrence": "2026-12-04T15:00:00Z",
        "schedule": "rate(1 minute)",
    }
    request = GenerateRequest.model_validate(schedule_input(10, "rate(1 minute)", at("2026-12-04 15:00")))
    assert request.occurrence == "2026-12-04T15:00:00Z"


def test_its_status_tells_the_last_occurrence_what_became_of_it_and_the_next_one_due() -> None:
    # GIVEN a schedule every 15 minutes and generate_orders down from 14:45 on
    clock = FakeTime(START + timedelta(minutes=35))  # until 14:55:30
    status = ScheduleStatus("cron(0/15 * * * ? *)")
    assert status.as_json()["last_occurrence"] is None

    def invoke(occurrence: datetime) -> bool:
        return clock.now < at("2026-11-25 14:45")

    seen: list[dict[str, str | None]] = []

    def wait(seconds: float) -> bool:
        seen.append(status.as_json())
        return clock.wait(seconds)

    # WHEN it runs past 14:30 (taken) and 14:45 (failing until the time is up)
    Scheduler(parse_schedule("cron(0/15 * * * ? *)"), invoke, lambda: clock.now, wait, 0.5, 8.0, status).run()
    # THEN while waiting for 14:45 it says 14:30 was invoked and 14:45 is due; during the outage, 15:00 is next
    assert {
        "last_occurrence": "2026-11-25T14:30:00+00:00",
        "last_outcome": "invoked",
        "next_due": "2026-11-25T14:45:00+00:00",
    }.items() <= seen[1].items()
    assert seen[-1]["next_due"] == "2026-11-25T15:00:00+00:00" and seen[-1]["last_outcome"] == "invoked"
    assert seen[-1]["schedule"] == "cron(0/15 * * * ? *)" and seen[-1]["status"] == "ok"
