"""The chat endpoints on a real index (the local model's vectors, lineage chains as a
crawl leaves them): extractive answers with numbered citations, threads in Postgres and
across a server restart, transient threads, SSE, feedback, and the 4xx / 503 answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from factflow.chat.extractive import NOTHING_FOUND
from factflow.db.connection import connect
from tests.integration.chat.conftest import CHAIN, TestClient, chat_client, ok
from tests.integration.flows import database

pytestmark = pytest.mark.integration

QUESTION = "how does a killed worker resume?"


def sse(text: str) -> list[tuple[str, Any]]:
    """(event, data) of an SSE body."""
    import json

    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data.append(line.partition(":")[2].removeprefix(" "))
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events


def test_capabilities_say_extractive(chat_api: TestClient) -> None:
    body = ok(chat_api.get("/api/v1/chat/capabilities"))
    assert body["mode"] == "extractive" and body["model"] is None
    assert body["indexed"] is True and body["slots"] == ["default"]
    assert body["streaming"] is True and body["retrieval"]["top_k"] == 5


def test_an_extractive_answer_cites_the_page_and_its_lineage(chat_api: TestClient) -> None:
    body = ok(chat_api.post("/api/v1/chat", json={"question": QUESTION}))
    assert body["mode"] == "extractive" and body["message_id"] is None
    first = body["citations"][0]
    assert first["number"] == 1 and first["url"] == "http://docs.test/recovery"
    assert first["heading_path"] == ["Recovery", "Resuming"] and first["title"] == "Recovery"
    assert "SIGKILL" in first["quote"] and first["quote"] in body["answer"]
    assert f"{first['quote']} [1]" in body["answer"]
    # the lineage chain: the crawl first, the embedding row that emitted the segment last
    assert [step["adapter_name"] for step in first["lineage"]] == list(CHAIN)
    assert first["lineage"][0]["url"] == "http://docs.test/recovery"
    assert first["lineage"][-1]["id"] == first["lineage_id"]
    chain = ok(chat_api.get(first["lineage_chain"]))
    assert chain["entry"]["id"] == first["lineage_id"]
    assert [a["adapter_name"] for a in chain["ancestors"]] == list(CHAIN[-2::-1])
    assert body["usage"] == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost_usd": 0.0,
        "calls": 0,
    }
    assert body["latency_ms"] >= body["retrieval_ms"] > 0


def test_nothing_relevant_is_said_not_guessed(chat_api: TestClient) -> None:
    body = ok(chat_api.post("/api/v1/chat", json={"question": "What is the capital of France?"}))
    assert body["citations"] == [] and body["answer"] == NOTHING_FOUND


def test_a_streamed_answer_sends_citations_tokens_then_done(
    chat_api: TestClient, chat_db: str
) -> None:
    thread = ok(chat_api.post("/api/v1/chat/threads", json={"title": "s"}), 201)
    response = chat_api.post(
        f"/api/v1/chat/threads/{thread['id']}/messages",
        json={"question": QUESTION},
        headers={"Accept": "text/event-stream"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse(response.text)
    names = [name for name, _ in events]
    assert names[0] == "citations" and names[-1] == "done"
    assert set(names[1:-1]) == {"token"} and len(names) > 5
    done = events[-1][1]
    answer = "".join(data["text"] for name, data in events if name == "token")
    assert answer == done["answer"] and "[1]" in answer
    assert events[0][1]["citations"][0]["url"] == "http://docs.test/recovery"
    assert done["first_token_ms"] <= done["latency_ms"]
    stored = ok(chat_api.get(f"/api/v1/chat/threads/{thread['id']}/messages"))
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[1]["id"] == done["message_id"] and stored[1]["content"] == answer
    assert stored[1]["citations"][0]["lineage_id"] == events[0][1]["citations"][0]["lineage_id"]
    # the question's query embedding is booked to the thread and its answer
    with connect(chat_db) as conn:
        usage = conn.execute(
            "SELECT kind, purpose, provider, message_id::text, prompt_tokens > 0 FROM llm_usage"
            " WHERE thread_id = %s",
            (thread["id"],),
        ).fetchall()
    assert usage == [("embedding", "query", "local", done["message_id"], True)]


def test_threads_survive_a_server_restart(chat_db: str, tmp_path: Path) -> None:
    with chat_client(chat_db, tmp_path / "a") as api:
        thread = ok(
            api.post(
                "/api/v1/chat/threads",
                json={"title": "Recovery", "retrieval": {"top_k": 2}},
            ),
            201,
        )
        assert thread["transient"] is False and thread["retrieval"]["top_k"] == 2
        answer = ok(
            api.post(f"/api/v1/chat/threads/{thread['id']}/messages", json={"question": QUESTION})
        )
        assert len(answer["citations"]) <= 2
        ok(
            api.post(
                f"/api/v1/chat/threads/{thread['id']}/messages", json={"question": "kafka offsets?"}
            )
        )
    with chat_client(chat_db, tmp_path / "b") as api:  # a new server process on the same database
        again = ok(api.get(f"/api/v1/chat/threads/{thread['id']}"))
        assert again["title"] == "Recovery" and again["message_count"] == 4
        messages = ok(api.get(f"/api/v1/chat/threads/{thread['id']}/messages"))
        assert [m["role"] for m in messages] == ["user", "assistant"] * 2
        assert messages[0]["content"] == QUESTION
        assert messages[1]["id"] == answer["message_id"] and messages[1]["mode"] == "extractive"
        rated = ok(
            api.post(
                f"/api/v1/chat/messages/{answer['message_id']}/feedback",
                json={"rating": "up", "comment": "right page"},
            )
        )
        assert rated["feedback"] == "up" and rated["feedback_comment"] == "right page"
        assert thread["id"] in [t["id"] for t in ok(api.get("/api/v1/chat/threads"))]
        patched = ok(api.patch(f"/api/v1/chat/threads/{thread['id']}", json={"title": "Renamed"}))
        assert patched["title"] == "Renamed" and patched["retrieval"]["top_k"] == 2
        assert api.delete(f"/api/v1/chat/threads/{thread['id']}").status_code == 204
        assert api.get(f"/api/v1/chat/threads/{thread['id']}").status_code == 404


def test_transient_threads_are_not_stored(chat_api: TestClient, chat_db: str) -> None:
    thread = ok(chat_api.post("/api/v1/chat/threads", json={"transient": True}), 201)
    assert thread["transient"] is True
    answer = ok(
        chat_api.post(f"/api/v1/chat/threads/{thread['id']}/messages", json={"question": QUESTION})
    )
    messages = ok(chat_api.get(f"/api/v1/chat/threads/{thread['id']}/messages"))
    assert [m["id"] for m in messages][1] == answer["message_id"]
    rated = ok(
        chat_api.post(
            f"/api/v1/chat/messages/{answer['message_id']}/feedback", json={"rating": "down"}
        )
    )
    assert rated["feedback"] == "down"
    with connect(chat_db) as conn:
        for table, column in (("chat_threads", "id"), ("chat_messages", "thread_id")):
            found = conn.execute(
                f"SELECT count(*) FROM {table} WHERE {column} = %s", (thread["id"],)
            ).fetchone()
            assert found == (0,), table
    assert thread["id"] not in [t["id"] for t in ok(chat_api.get("/api/v1/chat/threads"))]
    assert chat_api.delete(f"/api/v1/chat/threads/{thread['id']}").status_code == 204
    assert chat_api.get(f"/api/v1/chat/threads/{thread['id']}").status_code == 404


def test_an_empty_index_answers_503_with_a_clear_body(pg_url: str, tmp_path: Path) -> None:
    with database(pg_url) as url, chat_client(url, tmp_path) as api:
        caps = ok(api.get("/api/v1/chat/capabilities"))
        assert caps["indexed"] is False
        for stream in (False, True):
            response = api.post("/api/v1/chat", json={"question": QUESTION, "stream": stream})
            assert response.status_code == 503, response.text
            body = response.json()
            assert body["error_code"] == "CHAT_UNAVAILABLE"
            assert "embedding_index" in body["detail"] and body["correlation_id"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/api/v1/chat", {}, 422),
        ("POST", "/api/v1/chat", {"question": ""}, 422),
        ("POST", "/api/v1/chat", {"question": "   "}, 400),
        ("POST", "/api/v1/chat", {"question": "x" * 2001}, 422),
        ("POST", "/api/v1/chat", {"question": "q", "retrieval": {"top_k": 0}}, 422),
        ("POST", "/api/v1/chat", {"question": "q", "retrieval": {"bogus": 1}}, 422),
        ("POST", "/api/v1/chat", {"question": "q", "retrieval": {"slots": ["nope"]}}, 400),
        ("POST", "/api/v1/chat", {"question": "q", "retrieval": {"language": "klingon"}}, 400),
        ("POST", "/api/v1/chat", {"question": "q", "history": [{"role": "x", "content": ""}]}, 422),
        ("POST", "/api/v1/chat", {"question": "q", "model": "0"}, 400),
        ("POST", "/api/v1/chat/threads", {"title": 5}, 422),
        ("POST", "/api/v1/chat/threads", {"model": "no-provider"}, 400),
        (
            "POST",
            "/api/v1/chat/threads/00000000-0000-0000-0000-000000000007/messages",
            {"question": "q"},
            404,
        ),
        ("GET", "/api/v1/chat/threads/not-a-uuid", None, 422),
        ("GET", "/api/v1/chat/threads/00000000-0000-0000-0000-000000000007/usage", None, 404),
        ("PATCH", "/api/v1/chat/threads/00000000-0000-0000-0000-000000000007", {}, 404),
        (
            "POST",
            "/api/v1/chat/messages/00000000-0000-0000-0000-000000000007/feedback",
            {"rating": "up"},
            404,
        ),
        (
            "POST",
            "/api/v1/chat/messages/00000000-0000-0000-0000-000000000007/feedback",
            {"rating": 5},
            422,
        ),
        ("GET", "/api/v1/usage?group_by=colour", None, 422),
    ],
)
def test_bad_requests_get_4xx(
    chat_api: TestClient, method: str, path: str, body: Any, status: int
) -> None:
    response = chat_api.request(method, path, json=body)
    assert response.status_code == status, response.text[:500]
    assert response.json()["correlation_id"]
    # each status has one code here: the chat's own checks, FastAPI's validation, lookups
    codes = {400: "BAD_CHAT_REQUEST", 404: "NOT_FOUND", 422: "REQUEST_VALIDATION_ERROR"}
    assert response.json()["error_code"] == codes[status], response.text[:500]
