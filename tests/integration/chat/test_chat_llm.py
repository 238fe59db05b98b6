"""The LLM path against the local OpenAI-compatible server (tests/llm_provider.py, a
declared test double: no provider is reachable here): answers streamed from the
provider's tokens, follow-ups rewritten with the thread's history, usage rows with tokens
and cost, provider failures, and a client that disconnects mid-stream cancelling the
provider's stream (a real uvicorn server: the test client cannot disconnect)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from factflow.api import ApiSettings
from factflow.db.connection import connect
from tests.integration.chat.conftest import TestClient, chat_client, ok, served
from tests.integration.chat.test_chat_api import QUESTION, sse
from tests.llm_provider import PROMPT_TOKENS, FakeProvider

pytestmark = pytest.mark.integration

MODEL = "openai/gpt-4o-mini"  # litellm has a price for it: costs are reported
REWRITTEN = "How does a worker killed with SIGKILL resume?"


def llm_client(url: str, root: Path, provider: FakeProvider) -> TestClient:
    return chat_client(
        url, root, chat_model=MODEL, llm_api_base=provider.url, llm_api_key="sk-test"
    )


def test_llm_answers_follow_ups_and_accounts_for_every_call(
    chat_db: str, provider: FakeProvider, tmp_path: Path
) -> None:
    provider.reply = "Workers resume from their last snapshot [1]."
    with llm_client(chat_db, tmp_path, provider) as api:
        assert ok(api.get("/api/v1/chat/capabilities"))["mode"] == "llm"
        thread = ok(api.post("/api/v1/chat/threads", json={"title": "llm"}), 201)
        path = f"/api/v1/chat/threads/{thread['id']}/messages"
        first = ok(api.post(path, json={"question": QUESTION}))
        assert first["mode"] == "llm" and first["model"] == MODEL
        assert first["answer"] == provider.reply
        assert first["usage"]["calls"] == 1 and first["usage"]["prompt_tokens"] == PROMPT_TOKENS
        assert first["usage"]["completion_tokens"] == len(provider.reply.split())
        assert first["usage"]["cost_usd"] > 0
        (answer_call,) = provider.chat_requests()
        assert answer_call["stream"] is True
        system = answer_call["messages"][0]["content"]
        assert "[1] Recovery > Resuming (http://docs.test/recovery)" in system
        assert answer_call["messages"][-1] == {"role": "user", "content": QUESTION}

        provider.replies = [REWRITTEN]  # the rewrite's answer; the answer gets `reply`
        second = ok(api.post(path, json={"question": "and the duplicates?"}))
        rewrite, answer = provider.chat_requests()[1:]
        assert (
            "stream" not in rewrite
            and "Last question: and the duplicates?" in (rewrite["messages"][1]["content"])
        )
        assert QUESTION in rewrite["messages"][1]["content"]  # the history went along
        assert second["standalone_question"] == REWRITTEN
        assert second["citations"][0]["heading_path"] == ["Recovery", "Resuming"]
        assert [m["role"] for m in answer["messages"][1:]] == ["user", "assistant", "user"]
        assert second["usage"]["calls"] == 2

        usage = ok(api.get(f"/api/v1/chat/threads/{thread['id']}/usage"))
        by_purpose = {g["key"]["purpose"]: g for g in usage["groups"]}
        assert by_purpose["answer"]["calls"] == 2 and by_purpose["rewrite"]["calls"] == 1
        # each question's query embedding too (the local model: tokens, no cost)
        assert by_purpose["query"]["calls"] == 2 and by_purpose["query"]["cost_usd"] == 0
        assert {g["key"]["model"] for g in usage["groups"]} == {MODEL, "all-MiniLM-L6-v2"}
        assert usage["total"]["calls"] == 5 and usage["total"]["cost_usd"] > 0
        assert usage["total"]["unpriced_calls"] == 0
        grouped = ok(
            api.get(
                "/api/v1/usage",
                params={"group_by": ["provider", "day"], "thread_id": thread["id"]},
            )
        )
        group, local = grouped["groups"]
        assert group["key"]["provider"] == "openai" and group["calls"] == 3
        assert group["total_tokens"] == group["prompt_tokens"] + group["completion_tokens"]
        assert local["key"]["provider"] == "local" and local["calls"] == 2
        with connect(chat_db) as conn:
            rows = conn.execute(
                "SELECT purpose, message_id::text FROM llm_usage WHERE thread_id = %s ORDER BY id",
                (thread["id"],),
            ).fetchall()
        # a query embedding's row is written at retrieval, the LLM calls' with the answer
        assert [r[0] for r in rows] == ["query", "answer", "query", "rewrite", "answer"]
        assert rows[2][1] == rows[3][1] == rows[4][1] == second["message_id"]

        # a request may ask for an extractive answer on an LLM server: no provider call
        calls = len(provider.requests)
        plain = ok(api.post("/api/v1/chat", json={"question": QUESTION, "model": "extractive"}))
        assert plain["mode"] == "extractive" and len(provider.requests) == calls


def test_provider_failures(chat_db: str, provider: FakeProvider, tmp_path: Path) -> None:
    with llm_client(chat_db, tmp_path, provider) as api:
        provider.queue(429, 500)  # retried by the client, then answered
        ok(api.post("/api/v1/chat", json={"question": QUESTION}))
        assert len(provider.chat_requests()) == 3
        provider.queue(401)  # final: no retry, 503 before anything was sent
        failed = api.post("/api/v1/chat", json={"question": QUESTION})
        assert failed.status_code == 503, failed.text
        assert failed.json()["error_code"] == "CHAT_UNAVAILABLE"
        provider.queue(401)  # streaming: the citations went out, then an error event
        streamed = api.post("/api/v1/chat", json={"question": QUESTION, "stream": True})
        names = [name for name, _ in sse(streamed.text)]
        assert names == ["citations", "error"]
        assert sse(streamed.text)[-1][1]["error_code"] == "CHAT_UNAVAILABLE"


def test_a_client_that_disconnects_cancels_the_llm_call(
    chat_db: str, provider: FakeProvider, tmp_path: Path
) -> None:
    provider.reply = " ".join(f"word{i}" for i in range(200))
    provider.token_delay = 0.05  # 10 s for the whole answer
    settings = ApiSettings(
        environment="development",
        database_url=chat_db,
        data_dir=tmp_path / "server",
        recovery_dir=tmp_path / "recovery",
        storage_uri=f"file://{tmp_path / 'storage'}",
        validate_pipelines_on_start=False,
        chat_model=MODEL,
        llm_api_base=provider.url,
        llm_api_key="sk-test",
    )
    with served(settings) as base, httpx.Client(base_url=base, timeout=60) as http:
        thread = ok(http.post("/api/v1/chat/threads", json={"title": "left"}), 201)
        with http.stream(
            "POST",
            f"/api/v1/chat/threads/{thread['id']}/messages",
            json={"question": QUESTION, "stream": True},
        ) as response:
            assert response.status_code == 200
            seen = []
            for line in response.iter_lines():
                if line.startswith("event:"):
                    seen.append(line.partition(":")[2].strip())
                if "token" in seen:
                    break  # leave after the first token
        left = time.monotonic()
        assert seen == ["citations", "token"]
        deadline = left + 8
        while provider.cut == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert provider.cut == 1  # the provider's stream was closed before its end
        # timed from the client leaving, not from the request: the retrieval before the
        # first token (the query embedding) takes seconds on a loaded machine; the rest of
        # the answer would have taken another ~10 s
        assert time.monotonic() - left < 8, f"cut {time.monotonic() - left:.1f} s after"
        time.sleep(0.3)
        assert ok(http.get(f"/api/v1/chat/threads/{thread['id']}/messages")) == []
    with connect(chat_db) as conn:
        found = conn.execute(
            "SELECT kind, count(*) FROM llm_usage WHERE thread_id = %s GROUP BY kind",
            (thread["id"],),
        ).fetchall()
    assert found == [("embedding", 1)]  # the retrieval was done; the cut answer not stored
