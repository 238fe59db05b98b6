"""Cron expressions in a time zone (croniter), checked once and stepped tick by tick."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from factflow.triggers.exceptions import TriggerError


@dataclass(frozen=True, slots=True)
class Cron:
    """A valid 5-field cron expression (`*/5 * * * *`, `0 3 * * mon-fri`) and its zone;
    ticks are wall-clock times in the zone, returned in UTC."""

    expression: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if len(self.expression.split()) != 5 or not croniter.is_valid(self.expression):
            msg = (
                f"not a cron expression: {self.expression!r} (five fields: minute hour "
                "day-of-month month day-of-week, e.g. '*/5 * * * *')"
            )
            raise TriggerError(msg)
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            msg = f"unknown time zone {self.timezone!r} (an IANA name such as Europe/Oslo)"
            raise TriggerError(msg) from exc

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
