"""`factflow chat ask QUESTION [--thread ID] [--stream]`, `factflow chat threads`, the
interactive `factflow chat` (a thread, answers streamed as they come, the numbered
sources after each), and `factflow usage` (tokens and cost by provider, model, day, ...).

On a terminal an answer prints as text followed by its sources (number, title and
heading path, URL, and the lineage row to follow with `factflow lineage chain`); piped,
the API's JSON.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from factflow.cli.client.http import OutputOption, call, emit, fail, post_events, wants_json
from factflow.cli.common import emit_json

chat_app = typer.Typer(
    help="Ask the index: answers with numbered sources (extractive without an LLM).",
    invoke_without_command=True,
)

QuestionArg = Annotated[str, typer.Argument(metavar="QUESTION", help="What to ask.")]
ThreadOption = Annotated[
    str | None,
    typer.Option("--thread", "-t", metavar="THREAD_ID", help="Ask in this thread (follow-ups)."),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model", metavar="MODEL", help="litellm model for the answer; `extractive` for none."
    ),
]
TopKOption = Annotated[
    int | None, typer.Option("--top-k", min=1, max=20, metavar="N", help="Sources to retrieve.")
]
THREAD_COLUMNS = ("id", "title", "model", "message_count", "updated_at")
USAGE_COLUMNS = ("calls", "prompt_tokens", "completion_tokens", "cost_usd", "unpriced_calls")


def _body(question: str, model: str | None, top_k: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"question": question}
    if model is not None:
        body["model"] = model
    if top_k is not None:
        body["retrieval"] = {"top_k": top_k}
    return body


def _path(thread: str | None) -> str:
    return f"/chat/threads/{thread}/messages" if thread else "/chat"


def show_sources(console: Console, citations: list[dict[str, Any]]) -> None:
    if not citations:
        return
    console.print("\n[bold]Sources[/]", highlight=False)
    for c in citations:
        where = " > ".join(c.get("heading_path") or []) or c.get("title") or ""
        console.print(f"  [bold][{c['number']}][/] {escape(where)}", highlight=False)
        console.print(f"      [cyan]{escape(c.get('url') or '(no url)')}[/]", highlight=False)
        if c.get("lineage_id"):
            console.print(f"      lineage {c['lineage_id']}", style="dim", highlight=False)


def show_answer(data: dict[str, Any]) -> None:
    console = Console()
    console.print(escape(data["answer"]), highlight=False)
    show_sources(console, data.get("citations", []))
    _footer(console, data)


def _footer(console: Console, data: dict[str, Any]) -> None:
    usage = data.get("usage") or {}
    cost = usage.get("cost_usd")
    spent = f", ${cost:.6f}" if cost else ""
    tokens = usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
    mode = data.get("mode", "")
    console.print(
        f"\n{mode}{' ' + data['model'] if data.get('model') else ''}: "
        f"{data.get('latency_ms', 0):.0f} ms, {tokens} tokens{spent}",
        style="dim",
        highlight=False,
    )


def stream_answer(path: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """Print the answer as its tokens arrive, then the sources; the `done` event's data."""
    console = Console()
    citations: list[dict[str, Any]] = []
    done: dict[str, Any] | None = None
    for event in post_events(path, {**body, "stream": True}):
        data = event.json()
        if event.event == "citations":
            citations = data["citations"]
        elif event.event == "token":
            console.print(escape(data["text"]), end="", highlight=False, soft_wrap=True)
        elif event.event == "done":
            done = data
        elif event.event == "error":
            console.print()
            fail(f"{data.get('error_code')}: {data.get('detail')}")
    console.print()
    show_sources(console, citations)
    if done is not None:
        _footer(console, done)
    return done


@chat_app.callback()
def interactive(
    ctx: typer.Context,
    thread: ThreadOption = None,
    model: ModelOption = None,
    transient: Annotated[
        bool, typer.Option("--transient", help="A thread the server does not store.")
    ] = False,
) -> None:
    """Without a command: ask questions one after another in a thread (a new one unless
    --thread), each answer streamed with its sources. Empty line, `exit` or Ctrl-D ends."""
    if ctx.invoked_subcommand is not None:
        return
    if thread is None:
        body: dict[str, Any] = {"title": "factflow chat", "transient": transient}
        if model is not None:
            body["model"] = model
        thread = call("POST", "/chat/threads", json=body)["id"]
    console = Console()
    console.print(f"thread {thread}; empty line or Ctrl-D to end", style="dim", highlight=False)
    while True:
        try:
            question = console.input("[bold]? [/]").strip()
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        if question in ("", "exit", "quit"):
            return
        stream_answer(_path(thread), _body(question, None, None))
        console.print()


@chat_app.command("ask")
def ask(
    question: QuestionArg,
    thread: ThreadOption = None,
    stream: Annotated[bool, typer.Option("--stream", help="Print tokens as they come.")] = False,
    model: ModelOption = None,
    top_k: TopKOption = None,
    output: OutputOption = None,
) -> None:
    """One question (in a thread with --thread): the answer and its numbered sources."""
    body = _body(question, model, top_k)
    if stream and not wants_json(output):
        stream_answer(_path(thread), body)
        return
    data = call("POST", _path(thread), json=body)
    if wants_json(output):
        emit_json(data)
    else:
        show_answer(data)


@chat_app.command("threads")
def threads(
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=500, metavar="N", help="At most N threads.")
    ] = 50,
    output: OutputOption = None,
) -> None:
    """Stored threads, the most recently active first."""
    emit(call("GET", "/chat/threads", params={"limit": limit}), output, THREAD_COLUMNS)


@chat_app.command("messages")
def messages(
    thread: Annotated[str, typer.Argument(metavar="THREAD_ID", help="The thread's id.")],
    output: OutputOption = None,
) -> None:
    """A thread's questions and answers, oldest first."""
    data = call("GET", f"/chat/threads/{thread}/messages")
    if wants_json(output):
        emit_json(data)
        return
    console = Console()
    for m in data:
        who = "[bold]?[/]" if m["role"] == "user" else "[bold green]>[/]"
        console.print(f"{who} {escape(m['content'])}", highlight=False)
        if m["role"] == "assistant":
            show_sources(console, m.get("citations") or [])
            console.print()


def usage_command(
    group_by: Annotated[
        str,
        typer.Option(
            "--group-by",
            "-g",
            metavar="KEY,KEY",
            help="provider, model, day, execution, thread, kind, purpose.",
        ),
    ] = "provider,model",
    since: Annotated[
        str | None, typer.Option(metavar="TIME", help="ISO time or date: calls from then.")
    ] = None,
    thread: ThreadOption = None,
    execution: Annotated[
        str | None,
        typer.Option("--execution", "-e", metavar="EXECUTION_ID", help="Only this execution."),
    ] = None,
    output: OutputOption = None,
) -> None:
    """LLM and embedding usage: calls, tokens and cost per group, the total last."""
    params: dict[str, Any] = {"group_by": [g.strip() for g in group_by.split(",") if g.strip()]}
    for name, value in (("since", since), ("thread_id", thread), ("execution_id", execution)):
        if value is not None:
            params[name] = value
    data = call("GET", "/usage", params=params)
    if wants_json(output):
        emit_json(data)
        return
    rows = [{**g["key"], **{k: g[k] for k in USAGE_COLUMNS}} for g in data["groups"]]
    total = {k: data["total"][k] for k in USAGE_COLUMNS}
    rows.append({**dict.fromkeys(data["group_by"], ""), **total, data["group_by"][0]: "total"})
    emit(rows, output, [*data["group_by"], *USAGE_COLUMNS])
