"""`factflow search semantic|keyword|hybrid|rrf|multi-model QUERY` (the seed system's
search commands) and `factflow index list|stats|reindex|drop`.

On a terminal a search prints each result as its rank, score, URL, heading path and a
snippet with the matched words in bold; piped, the API's JSON.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from factflow.cli.client.http import OutputOption, call, emit, wants_json
from factflow.cli.common import emit_json

search_app = typer.Typer(
    help="Search the index: semantic, keyword, hybrid, RRF.", no_args_is_help=True
)
index_app = typer.Typer(help="Embedding slots: list, stats, reindex, drop.", no_args_is_help=True)

QueryArg = Annotated[str, typer.Argument(metavar="QUERY", help="What to search for.")]
LimitOption = Annotated[
    int, typer.Option("--limit", "-n", min=1, max=100, metavar="N", help="At most N results.")
]
SlotOption = Annotated[
    str | None,
    typer.Option(
        "--slot", "--model", metavar="SLOT", help="The slot to search (default: default)."
    ),
]
UrlOption = Annotated[
    str | None, typer.Option("--url-prefix", metavar="URL", help="Only hits under this URL.")
]
LanguageOption = Annotated[
    str, typer.Option(metavar="LANG", help="Full-text language (english, simple, ...).")
]
SlotArg = Annotated[str, typer.Argument(metavar="SLOT", help="The slot's name.")]
_BOLD = re.compile(r"\*\*(.+?)\*\*")


def _body(query: str, limit: int, slot: str | None, url_prefix: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"query": query, "limit": limit}
    if slot is not None:
        body["model"] = slot
    if url_prefix is not None:
        body["filters"] = {"url_prefix": url_prefix}
    return body


def show_results(data: dict[str, Any], output: Any) -> None:
    """The results as readable blocks, or the response as JSON when piped."""
    if wants_json(output):
        emit_json(data)
        return
    console = Console()
    results = data.get("results", [])
    if not results:
        console.print("(no results)")
        return
    for hit in results:
        parts = []
        for name in ("semantic", "keyword"):
            if hit.get(name):
                parts.append(f"{name} #{hit[name]['rank']}")
        parts += [f"{slot} #{m['rank']}" for slot, m in sorted(hit.get("models", {}).items())]
        ranks = f"  ({', '.join(parts)})" if parts else ""
        console.print(f"[bold]{hit['rank']}.[/] {hit['score']:.4f}{ranks}", highlight=False)
        console.print(f"   [cyan]{escape(hit.get('url') or '(no url)')}[/]", highlight=False)
        path = " > ".join(hit.get("heading_path") or []) or hit.get("title") or ""
        if path:
            console.print(f"   {escape(path)}", highlight=False)
        snippet = " ".join((hit.get("snippet") or hit.get("text") or "").split())
        console.print("   " + _BOLD.sub(r"[bold yellow]\1[/]", escape(snippet)), highlight=False)


@search_app.command("semantic")
def semantic(
    query: QueryArg,
    limit: LimitOption = 10,
    slot: SlotOption = None,
    url_prefix: UrlOption = None,
    output: OutputOption = None,
) -> None:
    """Vector search: the query embedded with the slot's model."""
    show_results(call("POST", "/search", json=_body(query, limit, slot, url_prefix)), output)


def _fused(
    path: str,
    query: str,
    limit: int,
    slot: str | None,
    url_prefix: str | None,
    language: str,
    output: Any,
    **extra: Any,
) -> None:
    body = {**_body(query, limit, slot, url_prefix), "language": language, **extra}
    show_results(call("POST", path, json=body), output)


@search_app.command("keyword")
def keyword(
    query: QueryArg,
    limit: LimitOption = 10,
    url_prefix: UrlOption = None,
    language: LanguageOption = "english",
    output: OutputOption = None,
) -> None:
    """Full-text search only (any of the words; titles and headings weigh more)."""
    _fused("/search/keyword", query, limit, None, url_prefix, language, output)


@search_app.command("hybrid")
def hybrid(
    query: QueryArg,
    limit: LimitOption = 10,
    slot: SlotOption = None,
    url_prefix: UrlOption = None,
    language: LanguageOption = "english",
    output: OutputOption = None,
) -> None:
    """Vector and keyword scores, weighted."""
    _fused("/search/hybrid", query, limit, slot, url_prefix, language, output)


@search_app.command("rrf")
def rrf(
    query: QueryArg,
    limit: LimitOption = 10,
    slot: SlotOption = None,
    url_prefix: UrlOption = None,
    language: LanguageOption = "english",
    k: Annotated[int, typer.Option(min=1, metavar="K", help="RRF constant.")] = 60,
    output: OutputOption = None,
) -> None:
    """Vector and keyword rankings fused by reciprocal rank (the chat default)."""
    _fused("/search/rrf", query, limit, slot, url_prefix, language, output, k=k)


@search_app.command("multi-model")
def multi_model(
    query: QueryArg,
    limit: LimitOption = 10,
    models: Annotated[
        str | None,
        typer.Option(metavar="SLOT,SLOT", help="Slots to search, comma-separated (default: all)."),
    ] = None,
    url_prefix: UrlOption = None,
    output: OutputOption = None,
) -> None:
    """Semantic search in several slots, merged, with each slot's rank."""
    body = _body(query, limit, None, url_prefix)
    if models:
        body["models"] = [m.strip() for m in models.split(",") if m.strip()]
    show_results(call("POST", "/search/multi-model", json=body), output)


SLOT_COLUMNS = ("name", "model", "backend", "dimensions", "vectors", "hnsw_m", "index_bytes")


@index_app.command("list")
def list_indexes(output: OutputOption = None) -> None:
    """Every slot with its model, vector count and sizes."""
    data = call("GET", "/indexes")
    if wants_json(output):
        emit_json(data)
        return
    typer.echo(f"{data['segments']} segments of {data['documents']} documents")
    emit(data["slots"], output, SLOT_COLUMNS)


@index_app.command("stats")
def stats(slot: SlotArg, output: OutputOption = None) -> None:
    """One slot: model, HNSW parameters, vectors, sizes."""
    emit(call("GET", f"/indexes/{slot}"), output)


@index_app.command("reindex")
def reindex(
    slot: SlotArg,
    m: Annotated[int, typer.Option(min=2, max=100, metavar="M", help="HNSW m.")] = 16,
    ef_construction: Annotated[
        int, typer.Option(min=4, max=1000, metavar="N", help="HNSW ef_construction.")
    ] = 64,
    output: OutputOption = None,
) -> None:
    """Rebuild the slot's HNSW index with these parameters."""
    body = {"m": m, "ef_construction": ef_construction}
    emit(call("POST", f"/indexes/{slot}/reindex", json=body), output)


@index_app.command("drop")
def drop(slot: SlotArg) -> None:
    """Drop the slot and its vectors (segments stay for keyword search)."""
    call("DELETE", f"/indexes/{slot}")
    typer.echo(f"dropped slot {slot}")
