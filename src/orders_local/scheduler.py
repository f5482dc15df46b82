"""orders-scheduler: the local stand-in for EventBridge Scheduler, as the trigger is for the event source mapping.

It reads ``GENERATE_SCHEDULE`` in EventBridge Scheduler's own syntax (``rate(…)``, ``cron(…)`` with six
fields, ``at(…)``; empty disables it) and, at each occurrence, POSTs ``{"count": GENERATE_SCHEDULE_COUNT,
"occurrence": <its time>, "schedule": GENERATE_SCHEDULE}`` to generate_orders: the Input of the SAM schedule.
While the function is down or failing it retries with backoff, until the next occurrence is due; occurrences
that pass meanwhile are skipped, never piled up. Every try of an occurrence names the same time, so it
produces the same orders: a try that timed out after producing them costs only duplicates the ingest skips.

``GET /health`` on ``SCHEDULER_STATUS_PORT`` says it is up, with the schedule, its last occurrence (and
whether generate_orders took it) and when the next one is due.

No cron library on PyPI takes AWS's syntax whole (1-7 for SUN-SAT, the ``?`` rule, ``nL``, ``nW``, ``LW``,
``n#k``, a year field), so the parser below is AWS's documented grammar, and nothing more. Times are UTC
(the schedule's default time zone).
"""

from __future__ import annotations

import calendar
import json
import logging
import re
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import ThreadingHTTPServer
from types import FrameType

import urllib3

from orders_core.config import Settings, get_settings
from orders_core.domain.model import format_timestamp
from orders_core.http.logs import configure_logging
from orders_core.http.responses import json_response
from orders_local.status_server import serve

log = logging.getLogger(__name__)


class ScheduleError(ValueError):
    """The expression is not one EventBridge Scheduler accepts: fix the setting; nothing will run."""


# ------------------------------------------------------------------------------------------ expressions

_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
_CRON = re.compile(r"cron\(([^()]*)\)")
_MONTHS = {
    name: i
    for i, name in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1)
}
_WEEKDAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_UNIT = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


@dataclass(frozen=True)
class Rate:
    every: timedelta

    def occurrences(self, start: datetime) -> Iterator[datetime]:
        # A rate schedule runs as soon as it exists, then every period. Its occurrences fall on multiples of the
        # period since the epoch (UTC): a restarted scheduler then names the occurrence it was in, not a new one at
        # the moment it came back, and runs it again with the same time, so its orders are the same (stored once).
        period = self.every.total_seconds()
        moment = datetime.fromtimestamp(start.timestamp() // period * period, start.tzinfo)
        while True:
            yield moment
            moment += self.every


@dataclass(frozen=True)
class At:
    moment: datetime

    def occurrences(self, start: datetime) -> Iterator[datetime]:
        if self.moment >= start:
            yield self.moment


DayMatcher = Callable[[date], bool]


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int]
    day_matches: DayMatcher

    def occurrences(self, start: datetime) -> Iterator[datetime]:
        first = start.replace(second=0, microsecond=0)
        if first < start:
            first += timedelta(minutes=1)
        times = sorted((h, m) for h in self.hours for m in self.minutes)
        day = first.date()
        while day.year <= max(self.years):
            if day.year not in self.years:
                day = date(day.year + 1, 1, 1)
            elif day.month not in self.months:
                day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
            else:
                if self.day_matches(day):
                    for hour, minute in times:
                        moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                        if moment >= first:
                            yield moment
                day += timedelta(days=1)


Schedule = Rate | At | Cron


def parse_schedule(expression: str) -> Schedule:
    """An EventBridge Scheduler expression: ``rate(5 minutes)``, ``cron(0 10 ? * MON-FRI *)``, ``at(…)``."""
    text = expression.strip()
    if match := _RATE.fullmatch(text):
        value, unit = int(match.group(1)), match.group(2)
        # AWS's own rule: "1 minute", "5 minutes"; never "1 minutes" or "5 minute".
        if value == 0 or (value == 1) == unit.endswith("s"):
            raise ScheduleError(f"{expression!r}: say 'rate(1 minute)' or 'rate(N minutes)' with N > 1")
        return Rate(value * _UNIT[unit.rstrip("s")])
    if match := _AT.fullmatch(text):
        try:
            return At(datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC))
        except ValueError as exc:
            raise ScheduleError(f"{expression!r}: {exc}") from None
    if match := _CRON.fullmatch(text):
        return _parse_cron(match.group(1), expression)
    raise ScheduleError(f"{expression!r} is not rate(…), cron(…) or at(yyyy-mm-ddThh:mm:ss)")


def _parse_cron(body: str, expression: str) -> Cron:
    fields = body.split()
    if len(fields) != 6:
        raise ScheduleError(f"{expression!r}: cron takes 6 fields (minutes hours day-of-month month day-of-week year)")
    minutes, hours, dom, month, dow, year = (f.upper() for f in fields)
    # Day-of-month and day-of-week cannot both be given: exactly one of them is "?".
    if (dom == "?") == (dow == "?"):
        raise ScheduleError(f"{expression!r}: one of day-of-month and day-of-week must be '?', not both")
    try:
        return Cron(
            minutes=_values(minutes, 0, 59),
            hours=_values(hours, 0, 23),
            months=_values(month, 1, 12, _MONTHS),
            years=_values(year, 1970, 2199),
            day_matches=_day_of_week(dow) if dom == "?" else _day_of_month(dom),
        )
    except ValueError as exc:
        raise ScheduleError(f"{expression!r}: {exc}") from None


def _number(text: str, low: int, high: int, names: dict[str, int] | None = None) -> int:
    value = (names or {}).get(text)
    if value is None:
        if not text.isdigit():
            raise ValueError(f"{text!r} is not a value")
        value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{text} is outside {low}-{high}")
    return value


def _values(field: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    """A field of ``, - * /``: a list of values, ranges and increments."""
    values: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = _number(step_text, 1, high) if step_text else 1
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first_text, _, last_text = span.partition("-")
            first, last = _number(first_text, low, high, names), _number(last_text, low, high, names)
            if first > last:
                raise ValueError(f"range {span} runs backwards")
        else:
            first = _number(span, low, high, names)
            last = high if step_text else first  # "5/15": from 5, every 15
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _aws_weekday(day: date) -> int:
    return (day.weekday() + 1) % 7 + 1  # Python: MON=0 … SUN=6; AWS: SUN=1 … SAT=7


def _day_of_month(field: str) -> DayMatcher:
    """``, - * / L W``: days, the last day (``L``), the last weekday (``LW``), the weekday nearest n (``nW``)."""
    if field == "L":
        return lambda day: day.day == calendar.monthrange(day.year, day.month)[1]
    if field == "LW":
        return lambda day: day == _nearest_weekday(day, calendar.monthrange(day.year, day.month)[1])
    if field.endswith("W"):
        target = _number(field[:-1], 1, 31)
        return lambda day: day == _nearest_weekday(day, target)
    days = _values(field, 1, 31)
    return lambda day: day.day in days


def _nearest_weekday(day: date, target: int) -> date | None:
    """The weekday nearest ``target`` in ``day``'s month, never crossing into another month."""
    length = calendar.monthrange(day.year, day.month)[1]
    if target > length:
        return None
    nearest = day.replace(day=target)
    if nearest.weekday() == 5:  # Saturday: Friday, or Monday when Friday is in the month before
        nearest += timedelta(days=-1 if target > 1 else 2)
    elif nearest.weekday() == 6:  # Sunday: Monday, or Friday when Monday is in the month after
        nearest += timedelta(days=1 if target < length else -2)
    return nearest


def _day_of_week(field: str) -> DayMatcher:
    """``, - * L #``: weekdays (1-7 or SUN-SAT), ``L`` (Saturday), ``nL`` (the month's last n), ``n#k`` (its k-th)."""
    if "/" in field:
        raise ValueError("day-of-week takes no increments")
    if "#" in field:  # one expression only: "3#1,6#3" is refused, as by AWS
        weekday_text, _, nth_text = field.partition("#")
        weekday, nth = _number(weekday_text, 1, 7, _WEEKDAYS), _number(nth_text, 1, 5)
        return lambda day: _aws_weekday(day) == weekday and (day.day - 1) // 7 + 1 == nth
    if field.endswith("L") and field != "L":
        weekday = _number(field[:-1], 1, 7, _WEEKDAYS)
        return lambda day: _aws_weekday(day) == weekday and day.day + 7 > calendar.monthrange(day.year, day.month)[1]
    weekdays = frozenset({7}) if field == "L" else _values(field, 1, 7, _WEEKDAYS)
    return lambda day: _aws_weekday(day) in weekdays


# ------------------------------------------------------------------------------------------ the process


def schedule_input(count: int, schedule: str, occurrence: datetime) -> dict[str, object]:
    """The Input of one occurrence, as the SAM schedule's: the count, and what makes the occurrence's orders
    the same however often it runs (its schedule and its time, EventBridge Scheduler's
    ``<aws.scheduler.scheduled-time>``)."""
    return {"count": count, "occurrence": format_timestamp(occurrence), "schedule": schedule}


class Invoker:
    """POSTs the schedule's Input for an occurrence to generate_orders; True when the function took it."""

    def __init__(self, settings: Settings) -> None:
        self._url = settings.generate_url
        self._count, self._schedule = settings.generate_schedule_count, settings.generate_schedule.strip()
        self._http = urllib3.PoolManager(
            retries=False, timeout=urllib3.Timeout(connect=2.0, read=settings.generate_schedule_timeout_s)
        )

    def __call__(self, occurrence: datetime) -> bool:
        body = json.dumps(schedule_input(self._count, self._schedule, occurrence)).encode()
        try:
            response = self._http.request("POST", self._url, body=body, headers={"Content-Type": "application/json"})
        except urllib3.exceptions.HTTPError as exc:
            log.warning("generate_orders at %s is unreachable: %s", self._url, exc)
            return False
        if response.status >= 500:
            log.warning("generate_orders answered %d: %s", response.status, response.data[:300])
            return False
        if response.status >= 300:  # the function refuses the Input: retrying cannot help; say so loudly
            log.error("generate_orders refused the schedule's input (%d): %s", response.status, response.data[:300])
        else:
            log.info("generate_orders: %s", response.data[:300].decode(errors="replace"))
        return True


class ScheduleStatus:
    """What the scheduler says of itself on ``/health``: written by its loop, read by the server's threads."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self._lock = threading.Lock()
        self._last: tuple[datetime, str] | None = None  # the last occurrence, and what became of it
        self._next_due: datetime | None = None

    def due(self, moment: datetime | None) -> None:
        with self._lock:
            self._next_due = moment

    def ran(self, occurrence: datetime, outcome: str) -> None:
        """``outcome``: ``invoked`` (generate_orders took it) or ``gave_up`` (it failed until the next one)."""
        with self._lock:
            self._last = (occurrence, outcome)

    def as_json(self) -> dict[str, str | None]:
        with self._lock:
            last, next_due = self._last, self._next_due
        return {
            "status": "ok",
            "schedule": self.expression,
            "last_occurrence": None if last is None else last[0].isoformat(),
            "last_outcome": None if last is None else last[1],
            "next_due": None if next_due is None else next_due.isoformat(),
        }


@dataclass
class Scheduler:
    """Runs ``invoke(occurrence)`` at each occurrence, retrying it with the same occurrence time until it
    works; ``wait(seconds)`` sleeps and returns True when asked to stop."""

    schedule: Schedule
    invoke: Callable[[datetime], bool]
    now: Callable[[], datetime]
    wait: Callable[[float], bool]
    retry_initial_s: float
    retry_max_s: float
    status: ScheduleStatus = field(default_factory=lambda: ScheduleStatus(""))

    def run(self) -> None:
        occurrences = self.schedule.occurrences(self.now())
        due = next(occurrences, None)
        while due is not None:
            self.status.due(due)
            if self.wait(max(0.0, (due - self.now()).total_seconds())):
                return
            following = next(occurrences, None)
            self.status.due(following)
            if not self._invoke_until(due, following):
                return
            while following is not None and following < self.now():
                log.warning("skipped the occurrence of %s: the one before was still running", following)
                following = next(occurrences, None)
            due = following
        self.status.due(None)
        log.info("the schedule has no further occurrence")
        self.wait(float("inf"))  # stay up until stopped: under honcho, one process ending ends them all

    def _invoke_until(self, occurrence: datetime, deadline: datetime | None) -> bool:
        """Invoke for ``occurrence``, retrying with backoff until it works or ``deadline`` (the next occurrence)
        is near; False when asked to stop."""
        delay = self.retry_initial_s
        while not self.invoke(occurrence):
            left = float("inf") if deadline is None else (deadline - self.now()).total_seconds()
            if left <= delay:
                log.warning("gave up this occurrence: the next one is due")
                self.status.ran(occurrence, "gave_up")
                return True
            if self.wait(delay):
                return False
            delay = min(delay * 2, self.retry_max_s)
        self.status.ran(occurrence, "invoked")
        return True


def main() -> int:
    """``orders-scheduler``: invoke generate_orders on ``GENERATE_SCHEDULE`` until SIGTERM or SIGINT."""
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    def wait(seconds: float) -> bool:
        return stopping.wait(None if seconds == float("inf") else min(seconds, threading.TIMEOUT_MAX))

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    schedule = None
    if settings.generate_schedule.strip():
        try:
            schedule = parse_schedule(settings.generate_schedule)
        except ScheduleError as exc:
            log.error("GENERATE_SCHEDULE: %s", exc)
            return 2
    status = ScheduleStatus(settings.generate_schedule)
    server = serve_health(status, settings)  # a port taken stops the scheduler at once, saying so
    try:
        if schedule is None:
            log.info("GENERATE_SCHEDULE is empty: nothing is scheduled")
            wait(float("inf"))
            return 0
        log.info(
            '%s: POST {"count": %d, "occurrence": …, "schedule": …} to %s',
            settings.generate_schedule,
            settings.generate_schedule_count,
            settings.generate_url,
        )
        Scheduler(
            schedule,
            Invoker(settings),
            lambda: datetime.now(UTC),
            wait,
            settings.generate_schedule_retry_initial_s,
            settings.generate_schedule_retry_max_s,
            status,
        ).run()
        return 0
    finally:
        if server is not None:
            server.shutdown()


def serve_health(status: ScheduleStatus, settings: Settings) -> ThreadingHTTPServer | None:
    """``GET /health`` on ``SCHEDULER_STATUS_PORT`` (none when it is 0)."""
    if not settings.scheduler_status_port:
        return None
    health = {"/health": lambda: json_response(200, status.as_json(), **{"Cache-Control": "no-store"})}
    return serve(health, settings.scheduler_status_host, settings.scheduler_status_port, "scheduler")
