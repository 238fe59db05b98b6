"""The search, indexes and embeddings endpoints on a real index (the local model's
vectors), and every 400 / 404 / 409 / 503 they answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.search.conftest import TestClient, make_client

pytestmark = pytest.mark.integration

QUESTION = "how does a killed worker resume?"


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text[:800]
    return response.json()


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text[:800]
    body: dict[str, Any] = response.json()
    assert body["error_code"] == code and body["correlation_id"], body
    return body


def test_semantic_search_cites_the_page(search_api: TestClient) -> None:
    body = _ok(search_api.post("/api/v1/search", json={"query": QUESTION, "limit": 2}))
    assert body["mode"] == "semantic" and body["models"] == ["default"]
    top = body["results"][0]
    assert top["url"] == "http://docs.test/recovery"
    assert top["heading_path"] == ["Recovery", "Resuming"]
    assert top["title"] == "Recovery" and "SIGKILL" in top["text"]
    assert top["rank"] == 1 and top["semantic"]["rank"] == 1 and top["keyword"] is None
    assert 0 < top["score"] <= 1 and top["execution_id"] and top["document_id"] == "recovery"
    assert len(body["results"]) == 2


def test_rrf_fuses_both_rankings_and_chat_alias_agrees(search_api: TestClient) -> None:
    request = {"query": QUESTION, "limit": 3, "k": 60, "language": "english"}
    body = _ok(search_api.post("/api/v1/search/rrf", json=request))
    top = body["results"][0]
    assert top["heading_path"] == ["Recovery", "Resuming"]
    assert top["semantic"]["rank"] == 1 and top["keyword"]["rank"] >= 1
    assert top["score"] == pytest.approx(1 / 61 + 1 / (60 + top["keyword"]["rank"]))
    assert "**killed**" in top["snippet"]
    alias = _ok(search_api.post("/api/v1/chat/search/rrf", json=request))
    assert [r["segment_id"] for r in alias["results"]] == [r["segment_id"] for r in body["results"]]
    # a keyword weight of zero leaves the vector ranking alone
    vector_only = _ok(search_api.post("/api/v1/search/rrf", json={**request, "keyword_weight": 0}))
    assert vector_only["results"][0]["score"] == pytest.approx(1 / 61)


def test_hybrid_keyword_filters_and_paging(search_api: TestClient) -> None:
    hybrid = _ok(search_api.post("/api/v1/search/hybrid", json={"query": "kafka offsets"}))
    assert hybrid["results"][0]["heading_path"] == ["Queue providers", "Kafka"]
    keyword = _ok(search_api.post("/api/v1/search/keyword", json={"query": "pancake batter"}))
    assert [r["url"] for r in keyword["results"]] == ["http://docs.test/cooking"]
    filtered = _ok(
        search_api.post(
            "/api/v1/search/rrf",
            json={"query": QUESTION, "filters": {"url_prefix": "http://docs.test/q"}},
        )
    )
    assert {r["url"] for r in filtered["results"]} == {"http://docs.test/queues"}
    by_meta = _ok(
        search_api.post(
            "/api/v1/search",
            json={"query": QUESTION, "filters": {"metadata": {"document_id": "cooking"}}},
        )
    )
    assert [r["document_id"] for r in by_meta["results"]] == ["cooking"]
    first = _ok(search_api.post("/api/v1/search", json={"query": QUESTION, "limit": 2}))
    second = _ok(
        search_api.post("/api/v1/search", json={"query": QUESTION, "limit": 2, "offset": 2})
    )
    assert second["results"][0]["rank"] == 3
    assert not {r["segment_id"] for r in first["results"]} & {
        r["segment_id"] for r in second["results"]
    }


def test_multi_model_merges_slots_with_per_model_scores(search_api: TestClient) -> None:
    body = _ok(search_api.post("/api/v1/search/multi-model", json={"query": QUESTION}))
    assert body["models"] == ["alt", "default"]
    top = body["results"][0]
    assert top["heading_path"] == ["Recovery", "Resuming"]
    assert set(top["models"]) == {"alt", "default"}
    assert top["models"]["alt"]["rank"] == top["models"]["default"]["rank"] == 1
    one = _ok(
        search_api.post("/api/v1/search/multi-model", json={"query": QUESTION, "models": ["alt"]})
    )
    assert set(one["results"][0]["models"]) == {"alt"}


def test_sources_capabilities_indexes_and_embeddings(search_api: TestClient) -> None:
    sources = _ok(search_api.get("/api/v1/search/sources"))
    assert sources[0] == {**sources[0], "origin": "docs.test", "segments": 5, "documents": 3}
    caps = _ok(search_api.get("/api/v1/search/capabilities"))
    assert [s["name"] for s in caps["slots"]] == ["alt", "default"]
    assert caps["models"] == ["all-MiniLM-L6-v2"] and caps["slots"][0]["dimensions"] == 384
    assert "english" in caps["languages"] and caps["rrf_k"] == 60
    indexes = _ok(search_api.get("/api/v1/indexes"))
    assert indexes["segments"] == 5 and indexes["documents"] == 3
    assert {s["name"]: s["vectors"] for s in indexes["slots"]} == {"alt": 5, "default": 5}
    assert all(s["index_bytes"] > 0 for s in indexes["slots"])
    embedded = _ok(search_api.post("/api/v1/embeddings", json={"texts": ["a", "b"]}))
    assert embedded["dimensions"] == 384 and len(embedded["vectors"]) == 2
    assert len(embedded["vectors"][0]) == 384


def test_slot_lifecycle(search_api: TestClient) -> None:
    slot = {"name": "spare", "model": "all-MiniLM-L6-v2", "dimensions": 384}
    created = _ok(search_api.post("/api/v1/indexes", json=slot), 201)
    assert (created["vectors"], created["hnsw_m"]) == (0, 16)
    again = _ok(search_api.post("/api/v1/indexes", json=slot), 201)  # same binding: no-op
    assert again["created_at"] == created["created_at"]
    _error(
        search_api.post("/api/v1/indexes", json={**slot, "model": "other", "dimensions": 8}),
        409,
        "SLOT_MISMATCH",
    )
    rebuilt = _ok(
        search_api.post("/api/v1/indexes/spare/reindex", json={"m": 8, "ef_construction": 32})
    )
    assert (rebuilt["hnsw_m"], rebuilt["hnsw_ef_construction"]) == (8, 32)
    assert search_api.delete("/api/v1/indexes/spare").status_code == 204
    _error(search_api.get("/api/v1/indexes/spare"), 404, "NOT_FOUND")
    _error(search_api.delete("/api/v1/indexes/spare"), 404, "NOT_FOUND")
    _error(search_api.post("/api/v1/indexes/spare/reindex", json={}), 404, "NOT_FOUND")
    _error(
        search_api.post("/api/v1/indexes", json={**slot, "name": "Bad-Name"}), 400, "BAD_REQUEST"
    )


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"query": "  "}, "query is empty"),
        ({"query": "x", "model": "nope"}, "no embedding slot 'nope'"),
        ({"query": "x", "limit": 0}, "limit must be 1 to 100"),
        ({"query": "x", "limit": 101}, "limit must be 1 to 100"),
        ({"query": "x", "offset": -1}, "offset must be"),
        ({"query": "x", "language": "klingon"}, "language 'klingon'"),
        ({"query": "x", "k": 0}, "k must be"),
        ({"query": "x", "vector_weight": -1}, "vector_weight must be"),
        ({"query": "x" * 2001}, "longer than 2000"),
    ],
)
def test_bad_requests_are_400(search_api: TestClient, body: dict[str, Any], words: str) -> None:
    error = _error(search_api.post("/api/v1/search/rrf", json=body), 400, "BAD_SEARCH_REQUEST")
    assert words in error["detail"]


def test_bad_embeddings_and_multi_model_requests(search_api: TestClient) -> None:
    _error(search_api.post("/api/v1/embeddings", json={"texts": [""]}), 400, "BAD_SEARCH_REQUEST")
    _error(
        search_api.post("/api/v1/embeddings", json={"texts": ["a"], "model": "nope"}),
        400,
        "BAD_SEARCH_REQUEST",
    )
    _error(
        search_api.post(
            "/api/v1/search/multi-model", json={"query": "x", "models": ["alt", "alt"]}
        ),
        400,
        "BAD_SEARCH_REQUEST",
    )


def test_no_index_is_503(index_db: str, tmp_path: Path) -> None:
    with make_client(index_db, tmp_path) as client:
        for path in ("/api/v1/search", "/api/v1/search/rrf", "/api/v1/search/multi-model"):
            error = _error(client.post(path, json={"query": "x"}), 503, "SEARCH_NOT_CONFIGURED")
            assert "no embedding slot is indexed yet" in error["detail"]
        # keyword search needs no slot: an empty index has no hits
        assert _ok(client.post("/api/v1/search/keyword", json={"query": "x"}))["results"] == []
        assert _ok(client.get("/api/v1/search/capabilities"))["slots"] == []
        # a slot whose model cannot be loaded here
        slot = {"name": "remote", "model": "no-such-model", "dimensions": 8}
        _ok(client.post("/api/v1/indexes", json=slot), 201)
        error = _error(
            client.post("/api/v1/search", json={"query": "x", "model": "remote"}),
            503,
            "SEARCH_NOT_CONFIGURED",
        )
        assert "no-such-model" in error["detail"]
