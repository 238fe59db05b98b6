"""`mask_url`: the one masking of secrets in URLs and DSNs (logs, errors, API answers)."""

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from factflow.masking import mask_url


def test_a_url_password_is_masked() -> None:
    assert mask_url("amqp://guest:s3cret@127.0.0.1:5672/") == "amqp://guest:***@127.0.0.1:5672/"


def test_a_dsn_keyword_password_is_masked() -> None:
    masked = mask_url("host=/tmp/pg user=app password='a b' dbname=x")
    assert "a b" not in masked
    assert "password=***" in masked


def test_a_query_password_is_masked_and_paths_stay_readable() -> None:
    masked = mask_url("postgresql://u@/db?host=/tmp/pg&password=hunter2")
    assert "hunter2" not in masked
    assert "host=/tmp/pg" in masked


def test_urls_without_secrets_are_unchanged() -> None:
    assert mask_url("kafka://127.0.0.1:9092") == "kafka://127.0.0.1:9092"
    assert mask_url(None) == "<no url>"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://app:pw@db:5432/x", "postgresql://app:***@db:5432/x"),
        ("amqps://guest:pw@mq.local/vhost", "amqps://guest:***@mq.local/vhost"),
        ("stomp://artemis:pw@127.0.0.1:61614", "stomp://artemis:***@127.0.0.1:61614"),
        ("pulsar+ssl://u:pw@broker:6651", "pulsar+ssl://u:***@broker:6651"),
        ("redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),  # a password, no user
        ("postgresql://app:p%40ss@db/x", "postgresql://app:***@db/x"),  # encoded '@'
        ("postgresql://app:p@ss@db/x", "postgresql://app:***@db/x"),  # a raw '@' in it
        ("postgresql://app:pw@[::1]:5432/x", "postgresql://app:***@[::1]:5432/x"),
        ("postgresql://app:pa:ss@db/x", "postgresql://app:***@db/x"),  # a ':' in it
        ("postgresql://db/x?password=pw", "postgresql://db/x?password=***"),
        ("postgresql://db/x?sslmode=&password=pw", "postgresql://db/x?sslmode=&password=***"),
        ("postgresql://app:@db/x", "postgresql://app@db/x"),  # an empty password
        ("postgresql://app@db/x", "postgresql://app@db/x"),  # a user alone is no secret
        ("postgresql://db/x?PASSWORD=pw&sslmode=require", "postgresql://db/x?PASSWORD=***&sslmode=require"),
        ("postgresql://db/x?sslmode=require", "postgresql://db/x?sslmode=require"),
        ("password=pw host=h", "password=*** host=h"),
        ("host=h PassWord = pw dbname=x", "host=h PassWord = *** dbname=x"),
        (r"host=h password='it\'s a b' dbname=x", "host=h password=*** dbname=x"),
        ("host=h dbname=x", "host=h dbname=x"),
        ("", "<no url>"),
    ],
)  # fmt: skip
def test_every_form_of_password_is_masked(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@given(
    scheme=st.sampled_from(["postgresql", "amqp", "stomp", "pulsar", "s3"]),
    user=st.text(alphabet=st.characters(codec="ascii", categories=["L", "N"]), max_size=8),
    password=st.text(min_size=1, max_size=20),
)
def test_any_url_password_is_masked(scheme: str, user: str, password: str) -> None:
    url = f"{scheme}://{user}:{quote(password, safe='')}@host:1/path"
    assert mask_url(url) == f"{scheme}://{user}:***@host:1/path"


@given(password=st.text(alphabet=st.characters(exclude_characters=" \t\n\r\f\v'"), min_size=1))
def test_any_dsn_password_is_masked(password: str) -> None:
    assert mask_url(f"host=h password={password} dbname=x") == "host=h password=*** dbname=x"


def test_a_dsn_password_with_a_unicode_space_is_masked_whole() -> None:
    # libpq splits on ASCII whitespace only: "ab\xa0cd" is one password
    assert mask_url("host=h password=ab\xa0cd dbname=x") == "host=h password=*** dbname=x"
