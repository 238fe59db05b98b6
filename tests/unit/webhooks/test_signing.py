"""Signatures verify with the `standardwebhooks` package and the seed system's HMAC."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from factflow.webhooks.signing import (
    encode_body,
    new_secret,
    secret_key,
    signed_headers,
    verify_factflow_signature,
)

BODY = encode_body({"type": "execution.completed", "data": {"b": 1, "a": "æ"}})


def _headers(secrets: list[str]) -> dict[str, str]:
    return signed_headers(
        secrets, delivery_id="d-1", event_type="execution.completed",
        timestamp=int(time.time()), body=BODY,
    )  # fmt: skip


def test_generated_secret_verifies_with_standardwebhooks() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert Webhook(secret).verify(BODY, _headers([secret]))["data"]["a"] == "æ"


def test_plain_secret_verifies_with_its_bytes_and_the_seed_hmac() -> None:
    secret = "my-shared-secret"
    headers = _headers([secret])
    Webhook(secret.encode()).verify(BODY, headers)
    expected = hmac.new(secret.encode(), BODY, hashlib.sha256).hexdigest()
    assert headers["X-Factflow-Signature"] == f"sha256={expected}"
    assert verify_factflow_signature(secret, BODY, headers["X-Factflow-Signature"])
    assert not verify_factflow_signature("other-secret", BODY, headers["X-Factflow-Signature"])
    assert headers["X-Factflow-Delivery"] == headers["webhook-id"] == "d-1"


def test_rotation_signs_with_both_secrets() -> None:
    old, new = new_secret(), new_secret()
    headers = _headers([new, old])
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(BODY, headers)
    Webhook(new).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_tampered_body_fails() -> None:
    secret = new_secret()
    headers = _headers([secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", headers)


def test_whsec_prefix_that_is_not_base64_is_a_plain_key() -> None:
    assert secret_key("whsec_not*base64!") == b"whsec_not*base64!"


def test_body_bytes_are_stable() -> None:
    assert encode_body({"b": 1, "a": 2}) == encode_body({"a": 2, "b": 1}) == b'{"a":2,"b":1}'
