"""Signatures: the seed system's `X-Factflow-Signature` and the Standard Webhooks headers.

Both use HMAC-SHA256 with the same key, the secret's bytes: a `whsec_<base64>` secret
(what factflow generates) is the decoded bytes, any other secret its UTF-8 bytes. So a
receiver verifies with `standardwebhooks.Webhook(secret)` for a `whsec_` secret, or
`Webhook(secret.encode())` for its own string.

- `X-Factflow-Signature: sha256=<hex hmac of the body>`
- `webhook-signature: v1,<base64 hmac of "<webhook-id>.<webhook-timestamp>.<body>">`, one
  per secret (space separated) while a rotated-out secret is still valid.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets as secrets_module
from collections.abc import Sequence
from typing import Any

SECRET_PREFIX = "whsec_"
SIGNATURE_HEADER = "X-Factflow-Signature"
EVENT_HEADER = "X-Factflow-Event"
DELIVERY_HEADER = "X-Factflow-Delivery"


def new_secret() -> str:
    """A random `whsec_` secret (24 bytes, the Standard Webhooks form)."""
    return SECRET_PREFIX + base64.b64encode(secrets_module.token_bytes(24)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key a secret stands for (see the module docstring)."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except binascii.Error:
            pass  # not base64 after all: the string is the key
    return secret.encode()


def encode_body(body: Any) -> bytes:
    """The exact bytes sent and signed: compact JSON with sorted keys (the same bytes on
    every attempt of a delivery)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def factflow_signature(secret: str, body: bytes) -> str:
    digest = hmac.new(secret_key(secret), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_factflow_signature(secret: str, body: bytes, header: str) -> bool:
    """Whether `header` is the `X-Factflow-Signature` of `body` (constant-time)."""
    return hmac.compare_digest(factflow_signature(secret, body), header)


def standard_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    secrets: Sequence[str], *, delivery_id: str, event_type: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Every header of a delivery attempt; `secrets[0]` is the current secret."""
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: factflow_signature(secrets[0], body),
        EVENT_HEADER: event_type,
        DELIVERY_HEADER: delivery_id,
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            standard_signature(s, delivery_id, timestamp, body) for s in secrets
        ),
    }
