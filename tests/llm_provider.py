"""A local OpenAI-compatible HTTP server: the declared test double for an LLM provider.

No LLM provider is reachable from the machines the tests and benchmarks run on, so the
provider is this server: it speaks the OpenAI wire format (`POST /v1/chat/completions`,
plain or streamed as server-sent chunks with usage last, and `POST /v1/embeddings`) that
litellm's `openai/` models use, answers the statuses a test queues up (429, 500, ...) one
request each, then succeeds, and records every request. `latency` delays every answer
(the benchmark's fixed 200 ms), `token_delay` spaces streamed tokens, and `cut` counts
streams whose client left before the last token. Everything between the client and the
socket is real: litellm, the OpenAI SDK, HTTP.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROMPT_TOKENS, COMPLETION_TOKENS = 11, 3
REPLY = "an answer"


@dataclass
class FakeProvider:
    url: str
    answers: list[int | float] = field(default_factory=list)
    """Queued answers, one per request: an HTTP status, or a float: seconds to stall."""
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    reply: str = REPLY
    """What completions answer; streamed word by word."""
    replies: list[str] = field(default_factory=list)
    """Answers for the next completions, one each, before `reply` again."""
    latency: float = 0.0
    """Seconds before every answer (before the first streamed chunk)."""
    token_delay: float = 0.0
    """Seconds between streamed chunks."""
    cut: int = 0
    """Streams whose client closed the connection before the last chunk."""
    in_flight: int = 0
    """Requests being answered now."""
    arrivals: list[tuple[float, int]] = field(default_factory=list)
    """Each request's arrival (monotonic time, requests in flight counting it)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def queue(self, *answers: int | float) -> None:
        with self.lock:
            self.answers.extend(answers)

    def next_answer(self, path: str, body: dict[str, Any]) -> int | float:
        with self.lock:
            self.requests.append((path, body))
            self.in_flight += 1
            self.arrivals.append((time.monotonic(), self.in_flight))
            return self.answers.pop(0) if self.answers else 200

    def answered(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def next_reply(self) -> str:
        with self.lock:
            return self.replies.pop(0) if self.replies else self.reply

    def chat_requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return [body for path, body in self.requests if path.endswith("/chat/completions")]


def _success(path: str, body: dict[str, Any], reply: str) -> dict[str, Any]:
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
                "message": {"role": "assistant", "content": reply},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        },
    }


def _chunks(body: dict[str, Any], reply: str) -> Iterator[dict[str, Any]]:
    words = reply.split(" ")
    base = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "model": body["model"]}
    for i, word in enumerate(words):
        text = word if i == 0 else " " + word
        yield {
            **base,
            "created": int(time.time()),
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
        }
    yield {
        **base,
        "created": int(time.time()),
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    yield {
        **base,
        "created": int(time.time()),
        "choices": [],
        "usage": {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": len(words),
            "total_tokens": PROMPT_TOKENS + len(words),
        },
    }


@contextmanager
def serve_provider() -> Iterator[FakeProvider]:
    """The server on a free port of 127.0.0.1, for the duration of the block."""
    state: FakeProvider

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        counted = False

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            answer = state.next_answer(self.path, body)
            self.counted = True
            try:
                self._answer(body, answer)
            finally:
                self._uncount()

        def _uncount(self) -> None:
            # before the answer is written: a client that got it may send its next
            # request before this thread runs again
            if self.counted:
                self.counted = False
                state.answered()

        def _answer(self, body: dict[str, Any], answer: int | float) -> None:
            if isinstance(answer, float):
                time.sleep(answer)
                answer = 200
            if state.latency:
                time.sleep(state.latency)
            if answer != 200:
                error = {"message": f"status {answer} on cue", "type": "test", "code": answer}
                self._send(answer, {"error": error})
            elif body.get("stream"):
                self._stream(body)
            else:
                self._send(200, _success(self.path, body, state.next_reply()))

        def _send(self, status: int, data: dict[str, Any]) -> None:
            payload = json.dumps(data).encode()
            self._uncount()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left

        def _stream(self, body: dict[str, Any]) -> None:
            self.close_connection = True
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for chunk in _chunks(body, state.next_reply()):
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                    if state.token_delay:
                        time.sleep(state.token_delay)
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                with state.lock:
                    state.cut += 1

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
