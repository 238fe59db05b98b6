"""Cron ticks in a time zone, and event matching by glob and condition."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from factflow.cron import Cron
from factflow.exceptions import ConfigurationError
from factflow.triggers.exceptions import TriggerError
from factflow.triggers.matching import check_condition, matches


def test_ticks_in_utc() -> None:
    start = datetime(2025, 3, 1, 10, 7, tzinfo=UTC)
    ticks = Cron("*/15 * * * *").upcoming(start, 3)
    assert [t.strftime("%H:%M") for t in ticks] == ["10:15", "10:30", "10:45"]


def test_ticks_follow_the_zone_across_dst() -> None:
    # 03:00 Oslo is 02:00 UTC in winter, 01:00 UTC in summer (DST from 30 March 2025)
    cron = Cron("0 3 * * *", "Europe/Oslo")
    winter = cron.next_after(datetime(2025, 3, 28, 12, tzinfo=UTC))
    summer = cron.next_after(datetime(2025, 3, 31, 12, tzinfo=UTC))
    assert (winter.hour, summer.hour) == (2, 1)
    assert winter.tzinfo == UTC


@pytest.mark.parametrize("expression", ["* * *", "61 * * * *", "every minute", "* * * * * *"])
def test_invalid_expressions(expression: str) -> None:
    with pytest.raises(ConfigurationError, match="E115 not a cron expression"):
        Cron(expression)


def test_unknown_zone() -> None:
    with pytest.raises(ConfigurationError, match="E116 unknown time zone"):
        Cron("* * * * *", "Mars/Olympus")


def test_glob_and_condition() -> None:
    condition = {"field": "env", "operator": "eq", "value": "prod"}
    assert matches("deploy.*", condition, "deploy.done", {"env": "prod"})
    assert not matches("deploy.*", condition, "deploy.done", {"env": "dev"})
    assert not matches("deploy.*", None, "build.done", {"env": "prod"})
    assert matches("*", None, "anything", {})


def test_condition_problems_carry_codes() -> None:
    with pytest.raises(TriggerError, match="E110"):
        check_condition({"field": "env", "operator": "equals", "value": 1})
    check_condition({"all": [{"field": "a", "operator": "exists"}]})
