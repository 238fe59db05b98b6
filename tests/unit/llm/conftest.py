"""A local OpenAI-compatible HTTP server, started per test: a declared test double.

No LLM provider is reachable from the machines these tests run on, so the provider is
this server: it speaks the OpenAI wire format (`POST /v1/chat/completions`,
`POST /v1/embeddings`) that litellm's `openai/` models use, answers the statuses a test
queues up (429, 500, ...) one request each, then succeeds, and records every request.
Everything between the adapter-facing client and the socket is real: litellm, the
OpenAI SDK, HTTP.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

PROMPT_TOKENS, COMPLETION_TOKENS = 11, 3


@dataclass
class FakeProvider:
    url: str
    answers: list[int | float] = field(default_factory=list)
    """Queued answers, one per request: an HTTP status, or a float: seconds to stall."""
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def queue(self, *answers: int | float) -> None:
        with self.lock:
            self.answers.extend(answers)

    def next_answer(self, path: str, body: dict[str, Any]) -> int | float:
        with self.lock:
            self.requests.append((path, body))
            return self.answers.pop(0) if self.answers else 200


def _success(path: str, body: dict[str, Any]) -> dict[str, Any]:
    if path.endswith("/embeddings"):
        texts = body["input"]
        return {
            "object": "list",
            "model": body["model"],
            "data": [
                {"object": "embedding", "index": i, "embedding": [float(len(t)), 0.5]}
                for i, t in enumerate(texts)
            ],
            "usage": {"prompt_tokens": PROMPT_TOKENS, "total_tokens": PROMPT_TOKENS},
        }
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "an answer"},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        },
    }


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    state: FakeProvider

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            answer = state.next_answer(self.path, body)
            if isinstance(answer, float):
                time.sleep(answer)
                answer = 200
            if answer == 200:
                self._send(200, _success(self.path, body))
            else:
                error = {"message": f"status {answer} on cue", "type": "test", "code": answer}
                self._send(answer, {"error": error})

        def _send(self, status: int, data: dict[str, Any]) -> None:
            payload = json.dumps(data).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = FakeProvider(url=f"http://127.0.0.1:{server.server_address[1]}/v1")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
