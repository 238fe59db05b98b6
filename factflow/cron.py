"""Cron expressions in a time zone (croniter): checked once, stepped tick by tick.

In the core because both the compiler (a pipeline's `triggers:`, E115/E116) and the
scheduler read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from factflow.exceptions import ConfigurationError
from factflow.types import ConfigProblem


def cron_problems(
    expression: object, timezone: object, at: tuple[str | int, ...] = ()
) -> list[ConfigProblem]:
    """E115 for an expression that is not five cron fields, E116 for an unknown zone."""
    problems: list[ConfigProblem] = []
    if (
        not isinstance(expression, str)
        or len(expression.split()) != 5
        or not croniter.is_valid(expression)
    ):
        problems.append(
            ConfigProblem(
                (*at, "cron"),
                "E115",
                f"not a cron expression: {expression!r}",
                "five fields: minute hour day-of-month month day-of-week, e.g. '*/5 * * * *'",
            )
        )
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            ConfigProblem(
                (*at, "timezone"),
                "E116",
                f"unknown time zone {timezone!r}",
                "use an IANA name such as UTC or Europe/Oslo",
            )
        )
    return problems


@dataclass(frozen=True, slots=True)
class Cron:
    """A valid 5-field cron expression (`*/5 * * * *`, `0 3 * * mon-fri`) and its zone;
    ticks are wall-clock times in the zone, returned in UTC. ConfigurationError (with
    the E-code) for an invalid one."""

    expression: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        problems = cron_problems(self.expression, self.timezone)
        if problems:
            msg = "; ".join(f"{p.code} {p.message} ({p.suggestion})" for p in problems)
            raise ConfigurationError(msg)

    def next_after(self, moment: datetime) -> datetime:
        """The first tick strictly after `moment`."""
        local = moment.astimezone(ZoneInfo(self.timezone))
        tick: datetime = croniter(self.expression, local).get_next(datetime)
        return tick.astimezone(UTC)

    def upcoming(self, moment: datetime, count: int) -> list[datetime]:
        ticks: list[datetime] = []
        for _ in range(count):
            moment = self.next_after(moment)
            ticks.append(moment)
        return ticks
