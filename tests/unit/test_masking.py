"""`mask_url`: the one masking of secrets in URLs and DSNs (logs, errors, API answers)."""

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
