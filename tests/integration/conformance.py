"""What the schemathesis modules share: the app's OpenAPI document loaded with their
config, and the checks every response must pass.

`CHECKS`: no 5xx, a documented status, a documented content type, and a body that
validates against the schema of its status (the error bodies against `ErrorResponse`).
`FACTFLOW_SCHEMATHESIS_EXAMPLES` sets the fuzzed cases per operation (default 5; the
explicit examples and the coverage phase's boundary values come on top).
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

MAX_EXAMPLES = int(os.environ.get("FACTFLOW_SCHEMATHESIS_EXAMPLES", "5"))
# on a loaded 2-core machine a request can wait seconds for a thread or a connection;
# schemathesis' default (10 s) then fails a response that conforms
REQUEST_TIMEOUT = 60
OPERATION_TIMEOUT = 10 * REQUEST_TIMEOUT
"""For `pytest.mark.timeout` on the parametrized test: one operation's cases, not one request."""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def openapi_schema(spec: dict[str, Any]) -> schemathesis.BaseSchema:
    """`spec` (an app's `openapi()`) as schemathesis cases, without an example database
    (every run starts from scratch, so a failure is the code's, not a stored one's)."""
    config = schemathesis.Config.from_dict(
        {
            "request-timeout": REQUEST_TIMEOUT,
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        }
    )
    schema: schemathesis.BaseSchema = schemathesis.openapi.from_dict(spec, config=config)
    return schema
