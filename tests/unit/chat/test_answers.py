"""The extractive answer (sentences, scoring, numbering) and the LLM prompt's packing
within a token budget; pure functions, no database."""

from __future__ import annotations

import pytest

from factflow.chat.exceptions import BadChatRequestError
from factflow.chat.extractive import NOTHING_FOUND, extract, sentences, terms
from factflow.chat.prompt import SYSTEM, Turn, pack, rewrite_messages
from factflow.chat.retrieval import Citation, RetrievalSettings
from factflow.llm import count_tokens

MODEL = "openai/gpt-4o-mini"


def citation(number: int, text: str, heading: str = "Section") -> Citation:
    return Citation(
        number=number,
        segment_id=number,
        url=f"http://docs.test/{number}",
        title="Docs",
        heading_path=["Docs", heading],
        text=text,
        quote=text,
        score=1 / (60 + number),
        similarity=0.5,
        lineage_id=None,
    )


def test_sentences_drop_headings_markdown_and_code() -> None:
    text = (
        "# Running a pipeline\n\n- Run `pip install factflow` first.\n```\ncode here\n```\n"
        "Then serve it now."
    )
    assert sentences(text) == ["Run pip install factflow first.", "Then serve it now."]


def test_terms_are_stemmed_without_stop_words() -> None:
    assert terms("How do I resume killed workers?") == {"resume", "kill", "worker"}


def test_the_best_sentence_of_each_source_is_quoted_with_its_number() -> None:
    sources = [
        citation(1, "Bytewax snapshots each epoch. A killed worker resumes from its snapshot."),
        citation(2, "RabbitMQ queues use manual acknowledgements. Nothing else matters here."),
        citation(3, "Kafka offsets live in the snapshot. Offsets resume the consumer."),
    ]
    answer = extract("how does a killed worker resume?", sources)
    assert answer.startswith("A killed worker resumes from its snapshot. [1]")
    assert sources[0].quote == "A killed worker resumes from its snapshot."
    assert "[2]" in answer or "[3]" in answer
    assert answer.count("[") <= 3


def test_no_sources_says_nothing_was_found() -> None:
    assert extract("anything", []) == NOTHING_FOUND


def test_a_source_without_sentences_is_quoted_whole() -> None:
    answer = extract("table", [citation(1, "| a | b |")])
    assert answer == "| a | b | [1]"


def test_pack_keeps_the_prompt_within_the_budget() -> None:
    sources = [citation(i, " ".join(["retrieval"] * 150)) for i in range(1, 6)]
    history = [Turn("user", "earlier question"), Turn("assistant", "earlier answer")]
    messages, packed = pack(MODEL, "the question", history, sources, budget=400)
    total = sum(count_tokens(MODEL, m["content"]) for m in messages)
    assert total <= 400
    assert [c.number for c in packed] == [1, 2]  # a prefix, in rank order
    assert "[1] Docs > Section (http://docs.test/1)" in messages[0]["content"]
    assert "[3]" not in messages[0]["content"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    # a top source larger than the whole budget is cut to fit, never dropped
    huge = [citation(1, " ".join(["retrieval"] * 2000))]
    messages, packed = pack(MODEL, "q", [], huge, budget=300)
    assert packed == huge
    assert count_tokens(MODEL, messages[0]["content"]) <= 300
    assert messages[0]["content"].startswith(SYSTEM)


def test_rewrite_sends_the_conversation_and_the_last_question() -> None:
    messages = rewrite_messages(
        [Turn("user", "what is RRF?"), Turn("assistant", "a fusion")], "and k?"
    )
    assert "user: what is RRF?\nassistant: a fusion" in messages[1]["content"]
    assert messages[1]["content"].endswith("Last question: and k?")


@pytest.mark.parametrize(
    "settings",
    [
        RetrievalSettings(top_k=0),
        RetrievalSettings(candidates=0),
        RetrievalSettings(min_similarity=2),
    ],
)
def test_retrieval_settings_out_of_range_are_refused(settings: RetrievalSettings) -> None:
    with pytest.raises(BadChatRequestError):
        settings.check()


def test_retrieval_settings_round_trip_through_json() -> None:
    settings = RetrievalSettings(slots=["a", "b"], top_k=3, url_prefix="http://x/")
    assert RetrievalSettings.of(settings.to_json()) == settings
    assert RetrievalSettings.of({"top_k": 2, "unknown": 1}) == RetrievalSettings(top_k=2)


def test_sources_take_the_best_of_each_page_first() -> None:
    from factflow.chat.retrieval import _diverse
    from factflow.db.repositories.search_queries import RankedHit
    from factflow.search import SearchHit

    def hit(segment: int, url: str) -> SearchHit:
        return SearchHit(
            RankedHit(
                segment,
                1.0,
                1,
                0.5,
                None,
                None,
                url,
                "t",
                [],
                "x",
                "x",
                None,
                None,
                "e",
                None,
                None,
                {},
            )
        )

    hits = [hit(1, "a"), hit(2, "a"), hit(3, "b"), hit(4, "a"), hit(5, "c")]
    assert [h.hit.segment_id for h in _diverse(hits, 4)] == [1, 3, 5, 2]
