"""The CLI's HTTP side: server URL, output format and timeout; requests, errors, SSE, output.

Server errors print as one line, `error: <status> <error_code>: <detail>`, exit code 1;
an unreachable server says how to start one. `output_format` is the one place that decides
between text and JSON: JSON when stdout is not a terminal, so scripts can pipe any command
into `jq`.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.table import Table

from factflow.cli.common import OUTPUT_METAVAR, OutputFormat, emit_json

DEFAULT_SERVER = "http://127.0.0.1:8000"
SERVER_ENV = "FACTFLOW_SERVER_URL"
API_KEY_ENV = "FACTFLOW_API_KEY"
API = "/api/v1"


@dataclass
class ClientState:
    server: str = DEFAULT_SERVER
    output: OutputFormat | None = None
    """None: decided by `output_format` from where stdout goes."""
    timeout: float | None = None
    headers: dict[str, str] = field(default_factory=dict)


STATE = ClientState()

OUTPUT_HELP = "text or json (default: text on a terminal, json when piped or redirected)."
OutputOption = Annotated[
    OutputFormat | None,
    typer.Option(
        "--output", "-o", metavar=OUTPUT_METAVAR,
        help=OUTPUT_HELP + " Overrides the global --output.",
    ),
]  # fmt: skip
ExecutionArg = Annotated[str, typer.Argument(metavar="EXECUTION_ID", help="The execution's id.")]
ConfigArg = Annotated[str, typer.Argument(metavar="CONFIG_ID", help="The config's id.")]
LineageArg = Annotated[str, typer.Argument(metavar="ROW_ID", help="A lineage row's id.")]
RouteArg = Annotated[str, typer.Argument(metavar="ROUTE_ID", help="The route's id.")]
KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="The object's storage key.")]
ExecutionOption = Annotated[
    str | None,
    typer.Option("--execution", "-e", metavar="EXECUTION_ID", help="Only this execution."),
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: str) -> float:
    """`90`, `30s`, `5m`, `1h` -> seconds."""
    match = _DURATION.match(value)
    if not match:
        msg = f"not a duration: {value!r} (use e.g. 90, 30s, 5m, 1h)"
        raise typer.BadParameter(msg)
    return float(match.group(1)) * _UNITS[match.group(2)]


def client_options(
    server: Annotated[
        str,
        typer.Option(
            "--server", envvar=SERVER_ENV, metavar="URL", help="The factflow server's URL."
        ),
    ] = DEFAULT_SERVER,
    output: Annotated[
        OutputFormat | None,
        typer.Option(
            "--output", metavar=OUTPUT_METAVAR, help="Server commands' output: " + OUTPUT_HELP
        ),
    ] = None,
    timeout: Annotated[
        str | None,
        typer.Option(
            "--timeout",
            metavar="DURATION",
            help="Request timeout, and how long `wait`/`watch` wait: 90, 30s, 5m, 1h.",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar=API_KEY_ENV,
            metavar="KEY",
            help="API key, sent as `Authorization: Bearer` (the variable keeps it out of ps).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Declarative message pipelines compiled into Bytewax dataflows."""
    STATE.server = server.rstrip("/")
    if api_key:
        STATE.headers["Authorization"] = f"Bearer {api_key}"
    STATE.output = output
    STATE.timeout = None if timeout is None else parse_duration(timeout)


def output_format(
    output: OutputFormat | None, *, piped: OutputFormat = OutputFormat.json
) -> OutputFormat:
    """The output format of a server command: its own `--output`, else the global one, else
    text on a terminal and `piped` (JSON) when stdout is a pipe or a file."""
    chosen = output or STATE.output
    if chosen is not None:
        return chosen
    return OutputFormat.text if sys.stdout.isatty() else piped


def wants_json(output: OutputFormat | None) -> bool:
    return output_format(output) is OutputFormat.json


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def _error_line(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} {response.reason_phrase}: {response.text[:300]}"
    code = body.get("error_code", response.reason_phrase) if isinstance(body, dict) else ""
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):  # FastAPI's validation errors
        detail = "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}" for d in detail
        )
    return f"{response.status_code} {code}: {detail}"


def client(timeout: float | None = None) -> httpx.Client:
    limit = timeout if timeout is not None else (STATE.timeout or 30.0)
    return httpx.Client(base_url=STATE.server, timeout=limit, headers=STATE.headers)


def request(method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One API call (`path` below /api/v1); errors end the command with one line."""
    try:
        with client() as http:
            response = http.request(method, API + path, **kwargs)
    except httpx.TimeoutException:
        fail(f"the factflow server at {STATE.server} did not answer in time (--timeout)")
    except httpx.HTTPError as exc:
        fail(
            f"cannot reach the factflow server at {STATE.server}: {exc}; start one with "
            f"`factflow serve --embedded`, or pass --server / set {SERVER_ENV}"
        )
    if response.status_code >= 400:
        body = _report(response)
        if body:
            typer.echo(body, err=True)
        hint = ""
        if response.status_code == 401:
            hint = f" (send a key: set {API_KEY_ENV} or pass --api-key)"
        fail(_error_line(response) + hint)
    return response


def _report(response: httpx.Response) -> str:
    """The validation issues of a CONFIG_INVALID error, one line each."""
    try:
        report = response.json().get("validation_report")
    except (ValueError, AttributeError):
        return ""
    if not isinstance(report, dict):
        return ""
    return "\n".join(
        f"  {i['severity']} {i['code']} at {i['path']}: {i['message']}"
        for i in report.get("issues", [])
    )


def call(method: str, path: str, **kwargs: Any) -> Any:
    response = request(method, path, **kwargs)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


def emit(data: Any, output: OutputFormat | None, columns: Sequence[str] | None = None) -> None:
    """JSON, or a table (lists) / key: value lines (objects)."""
    if wants_json(output):
        emit_json(data)
        return
    console = Console()
    if isinstance(data, list):
        if not data:
            console.print("(none)")
            return
        keys = list(columns or data[0].keys())
        table = Table(*keys)
        for item in data:
            table.add_row(*(_cell(item.get(k)) for k in keys))
        console.print(table)
    elif isinstance(data, dict):
        for key, value in data.items():
            if columns is not None and key not in columns:
                continue
            console.print(f"[bold]{key}[/]: {_cell(value)}", highlight=False, soft_wrap=True)
    else:
        typer.echo(str(data))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


@dataclass
class SseEvent:
    event: str
    data: str
    id: str | None

    def json(self) -> Any:
        try:
            return json.loads(self.data)
        except ValueError:
            return self.data


def parse_sse(lines: Iterator[str]) -> Iterator[SseEvent]:
    """The events of an SSE body, from its lines."""
    event, event_id = "message", None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield SseEvent(event, "\n".join(data), event_id)
            event, data, event_id = "message", [], None
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                event_id = value


def post_events(path: str, body: Any) -> Iterator[SseEvent]:
    """The SSE answer of one POST (no reconnect: a POST may not be repeated safely)."""
    try:
        with (
            client() as http,
            http.stream(
                "POST", API + path, json=body, headers={"Accept": "text/event-stream"}
            ) as response,
        ):
            if response.status_code >= 400:
                response.read()
                fail(_error_line(response))
            yield from parse_sse(response.iter_lines())
    except httpx.TimeoutException:
        fail(f"the factflow server at {STATE.server} did not answer in time (--timeout)")
    except httpx.HTTPError as exc:
        fail(f"the stream from {STATE.server} broke: {exc}")


def stream_events(path: str, *, deadline: float | None) -> Iterator[SseEvent]:
    """The SSE events at `path`, reconnecting with Last-Event-ID until the server closes
    the stream after a final event; ends at `deadline` (monotonic) with exit code 2."""
    last_id: str | None = None
    while True:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        remaining = None if deadline is None else max(0.1, deadline - time.monotonic())
        ended = False
        try:
            with (
                client(timeout=remaining) as http,
                http.stream("GET", API + path, headers=headers) as response,
            ):
                if response.status_code >= 400:
                    response.read()
                    fail(_error_line(response))
                for item in parse_sse(response.iter_lines()):
                    if deadline is not None and time.monotonic() > deadline:
                        fail("timed out (--timeout) before the execution finished", 2)
                    yield item
                    if item.id:
                        last_id = item.id
                ended = True
        except httpx.TimeoutException:
            fail("timed out (--timeout) before the execution finished", 2)
        except httpx.HTTPError as exc:
            if deadline is not None and time.monotonic() > deadline:
                fail("timed out (--timeout) before the execution finished", 2)
            typer.secho(f"stream interrupted ({exc}); reconnecting", err=True)
            time.sleep(1)
            continue
        if ended:
            return
