"""factflow.auth.limits against Postgres's GCRA counters: which limit applies, a burst of
N per minute then a refusal that says when to retry, subjects counted apart, and login
attempts counted per client address."""

from __future__ import annotations

import uuid

import pytest

from factflow.auth.exceptions import AuthCode, RateLimitedError
from factflow.auth.limits import check_login_rate, check_rate, rate_of
from factflow.auth.principal import Principal, PrincipalKind
from factflow.auth.scopes import READ_SCOPES
from factflow.auth.settings import AuthMode, AuthSettings, Limits, LoginPolicy
from factflow.db import DbConnection


def _settings(rate: int | None = 600, login_rate: int = 30) -> AuthSettings:
    return AuthSettings(
        AuthMode.KEYS,
        "s" * 32,
        login=LoginPolicy(rate_per_minute=login_rate),
        limits=Limits(rate_per_minute=rate),
    )


def _key(own_limit: int | None = None) -> Principal:
    return Principal(
        PrincipalKind.KEY,
        "k@x.test",
        READ_SCOPES,
        key_id=uuid.uuid4(),
        key_prefix="ff_live_abc",
        rate_limit_per_minute=own_limit,
    )


def test_a_keys_own_limit_wins_over_the_servers() -> None:
    assert rate_of(_settings(rate=600), _key(own_limit=5)) == 5
    assert rate_of(_settings(rate=600), _key()) == 600
    assert rate_of(_settings(rate=None), _key()) is None


def test_a_limit_of_n_allows_a_burst_of_n_then_says_when_to_retry(conn: DbConnection) -> None:
    key = _key(own_limit=2)
    check_rate(conn, _settings(), key)
    check_rate(conn, _settings(), key)
    with pytest.raises(RateLimitedError) as refused:
        check_rate(conn, _settings(), key)
    error = refused.value
    assert error.code is AuthCode.RATE_LIMITED
    assert error.limit == 2
    # 60 s / 2: the next request is allowed half a minute after the burst
    assert 29 < error.retry_after <= 30
    assert error.detail == (
        "k@x.test (ff_live_abc) is over its rate limit of 2 requests per minute:"
        f" retry in {error.retry_after:.1f} s"
    )
    check_rate(conn, _settings(), _key(own_limit=2))  # another key counts apart


def test_the_servers_limit_applies_to_a_key_without_its_own(conn: DbConnection) -> None:
    key = _key()
    check_rate(conn, _settings(rate=1), key)
    with pytest.raises(RateLimitedError) as refused:
        check_rate(conn, _settings(rate=1), key)
    assert refused.value.limit == 1
    assert 59 < refused.value.retry_after <= 60


def test_without_a_limit_nothing_is_counted(conn: DbConnection) -> None:
    key = _key()
    for _ in range(5):
        check_rate(conn, _settings(rate=None), key)
    (rows,) = conn.execute(
        "SELECT count(*) FROM rate_limits WHERE subject = %s", (key.subject,)
    ).fetchone()
    assert rows == 0


def test_login_attempts_are_counted_per_address(conn: DbConnection) -> None:
    address = f"10.9.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    settings = _settings(login_rate=1)
    check_login_rate(conn, settings, address)
    with pytest.raises(RateLimitedError) as refused:
        check_login_rate(conn, settings, address)
    error = refused.value
    assert (error.code, error.limit) == (AuthCode.RATE_LIMITED, 1)
    assert 59 < error.retry_after <= 60
    assert error.detail == (
        f"too many login attempts from {address}: at most 1 a minute;"
        f" retry in {error.retry_after:.1f} s"
    )
    (subject,) = conn.execute(
        "SELECT subject FROM rate_limits WHERE subject = %s", (f"login:{address}",)
    ).fetchone()
    assert subject == f"login:{address}"


def test_login_attempts_without_an_address_share_one_counter(conn: DbConnection) -> None:
    conn.execute("DELETE FROM rate_limits WHERE subject = 'login:unknown'")
    settings = _settings(login_rate=1)
    check_login_rate(conn, settings, None)
    with pytest.raises(RateLimitedError, match="too many login attempts from None"):
        check_login_rate(conn, settings, None)
    (count,) = conn.execute(
        "SELECT count(*) FROM rate_limits WHERE subject = 'login:unknown'"
    ).fetchone()
    assert count == 1
