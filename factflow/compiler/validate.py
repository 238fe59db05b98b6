"""Validation: every issue of a pipeline in one pass, each with code and position.

Three layers, so that one problem does not hide the others:
1. structure, by the pydantic models (unknown and missing keys, types, ranges);
2. checks on the raw data that need no complete model (ids, adapter types and configs,
   conditions, providers, numbers), so they run even when the structure is broken;
3. references between parts (init_message, queues, cycles), once the model is complete.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from dataclasses import dataclass
from typing import Any, get_args, get_origin

import jsonschema
from pydantic import BaseModel, ValidationError

from factflow.adapters.base import Adapter
from factflow.adapters.registry import AdapterRegistry, UnknownAdapterError
from factflow.compiler.config import PIPELINE_NAME_PATTERN, ROUTE_ID_PATTERN, PipelineConfig
from factflow.compiler.diagnostics import Issue, ValidationReport, format_path
from factflow.compiler.extras import missing_extra_problem
from factflow.compiler.graph import QueueGraph
from factflow.compiler.loader import LoadedYaml, PathKey
from factflow.compiler.triggers import trigger_problems
from factflow.conditions import condition_problems, field_path_problem
from factflow.exceptions import AdapterRegistrationError
from factflow.extras import STORAGE_EXTRAS, Extra
from factflow.providers.registry import UnknownProviderError, get_provider, provider_names
from factflow.providers.spec import ProviderSpec
from factflow.storage.factory import SCHEMES as STORAGE_SCHEMES
from factflow.types import ConfigProblem
from factflow.writers.base import Writer
from factflow.writers.registry import UnknownWriterError, default_writers

_ROUTE_ID_RE = re.compile(ROUTE_ID_PATTERN)
_PIPELINE_NAME_RE = re.compile(PIPELINE_NAME_PATTERN)

# a loop is closed through the provider's queue: it must outlive the sources' end

_TYPE_ERRORS = {
    "string_type", "int_type", "int_parsing", "int_from_float", "float_type", "float_parsing",
    "bool_type", "bool_parsing", "dict_type", "list_type", "model_type", "model_attributes_type",
    "none_required", "is_instance_of",
}  # fmt: skip
_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def strict_from_env() -> bool:
    """`FACTFLOW_CONFIG_VALIDATOR_STRICT=0` switches validation to warn-only."""
    return os.environ.get("FACTFLOW_CONFIG_VALIDATOR_STRICT", "1").strip().lower() not in (
        "0", "false", "no", "off",
    )  # fmt: skip


@dataclass
class Validation:
    report: ValidationReport
    config: PipelineConfig | None


class _Collector:
    def __init__(self, loaded: LoadedYaml) -> None:
        self.loaded = loaded
        self.issues: list[Issue] = list(loaded.issues)

    def add(
        self, code: str, path: PathKey, message: str, suggestion: str, *, at_key: bool = False
    ) -> None:
        location = self.loaded.locate(path, at_key=at_key)
        self.issues.append(Issue.error(code, path, message, suggestion, location))

    def add_problem(self, base: PathKey, problem: ConfigProblem) -> None:
        self.add(problem.code, (*base, *problem.path), problem.message, problem.suggestion)


def validate(
    loaded: LoadedYaml, registry: AdapterRegistry, *, strict: bool | None = None
) -> Validation:
    """Validate a loaded document; never raises for anything in the document."""
    strict = strict_from_env() if strict is None else strict
    out = _Collector(loaded)
    config: PipelineConfig | None = None
    if isinstance(loaded.data, dict):
        config = _check_structure(loaded.data, out)
        _check_raw(loaded.data, registry, out)
        if config is not None:
            _check_references(config, registry, out)
    return Validation(ValidationReport.of(out.issues, strict=strict), config)


# -- 1. structure -------------------------------------------------------------------


def _check_structure(data: dict[str, Any], out: _Collector) -> PipelineConfig | None:
    """The model of `data`, reporting what keeps it from being one; when only keys are wrong,
    the model of the document repaired, so the reference checks still run."""
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            _structure_issue(error, out)
        return _repaired(data, exc)


REPAIR_ROUNDS = 5


def _repaired(data: dict[str, Any], exc: ValidationError) -> PipelineConfig | None:
    """The model of `data` with each unknown key read as its suggested spelling (dropped if
    there is none) and each bad optional value dropped; None when a required part is
    missing or broken. Its issues are not reported: the first pass reported them."""
    doc = copy.deepcopy(data)
    for _ in range(REPAIR_ROUNDS):
        for error in exc.errors():
            if not _repair(doc, error):
                return None
        try:
            return PipelineConfig.model_validate(doc)
        except ValidationError as again:
            exc = again
    return None


def _repair(doc: dict[str, Any], error: Any) -> bool:
    path = _data_path(doc, tuple(error["loc"]))
    if not path or not isinstance(key := path[-1], str) or error["type"] == "missing":
        return False
    parent: Any = doc
    for part in path[:-1]:
        parent = parent[part]
    known = _known_keys(path[:-1])
    if not isinstance(parent, dict) or key not in parent or not known:
        return False  # not a model's field (a route id, a list item): cannot be dropped
    value = parent.pop(key)
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(key, known, n=1)
        if close and close[0] not in parent:
            parent[close[0]] = value
    elif key not in known or _is_required(path):
        return False
    return True


def _structure_issue(error: Any, out: _Collector) -> None:
    path = _data_path(out.loaded.data, tuple(error["loc"]))
    kind = error["type"]
    where = format_path(path) or "the top level"
    if kind == "extra_forbidden":
        key = path[-1]
        known = _known_keys(path[:-1])
        close = _suggest_key(str(key), path[:-1])
        hint = f"did you mean '{close}'? " if close else ""
        allowed = f"allowed here: {', '.join(known)}" if known else "remove it"
        out.add("E101", path, f"unknown key '{key}'", hint + allowed, at_key=True)
    elif kind == "missing":
        parent = path[:-1]
        out.add(
            "E102",
            path,
            f"missing required key '{path[-1]}' in {format_path(parent) or 'the top level'}",
            f"add `{path[-1]}:`",
            at_key=True,
        )
    elif kind == "too_short" and path == ("routes",):
        out.add(
            "E102", path, "the pipeline has no routes", "add at least one route under `routes:`"
        )
    elif kind in _TYPE_ERRORS:
        out.add(
            "E104",
            path,
            f"{where}: {error['msg'].lower()}, got {_describe(error.get('input'))}",
            "change the value to the expected type",
        )
    elif kind in _RANGE_ERRORS:
        out.add("E405", path, f"{where}: {error['msg'].lower()}", "use a value in range")
    elif kind == "literal_error" and path == ("version",):
        out.add(
            "E105",
            path,
            f"unsupported version {error.get('input')!r}",
            'write `version: "1.0"` (the only format version)',
        )
    else:
        out.add("E105", path, f"{where}: {error['msg']}", "fix the value")


def _data_path(data: Any, loc: tuple[Any, ...]) -> PathKey:
    """The path in the YAML of a pydantic error `loc`.

    `loc` may hold parts that are not in the document: union branch tags, and the index
    `0` of an outbound written as one mapping or string instead of a list. Walking the
    data keeps only the real keys and indexes (a user's key may itself contain '[').
    """
    path: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict):
            if isinstance(part, str) and part in node:
                path.append(part)
                node = node[part]
            elif last and isinstance(part, str):
                path.append(part)  # a missing key
        elif isinstance(node, list):
            if isinstance(part, int) and 0 <= part < len(node):
                path.append(part)
                node = node[part]
        else:
            break  # a scalar the model turned into a mapping (`outbound: q`)
    return tuple(path)


def _model_at(path: PathKey) -> type[BaseModel] | None:
    """The model that parses the mapping at `path` (None for a free-form mapping)."""
    node: Any = PipelineConfig
    for part in path:
        node = _optional_of(node)
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = next((f for n, f in node.model_fields.items() if part in (n, f.alias)), None)
            if field is None:
                return None
            node = field.annotation
        elif get_origin(node) in (list, dict) and get_args(node):
            node = get_args(node)[-1]  # the item of a list, the value of a mapping
        else:
            return None
    node = _optional_of(node)
    return node if isinstance(node, type) and issubclass(node, BaseModel) else None


def _optional_of(annotation: Any) -> Any:
    """`X | None` -> X."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) not in (list, dict) and len(args) == 1:
        return args[0]
    return annotation


def _known_keys(path: PathKey) -> list[str]:
    """The keys a model accepts at `path`, for "did you mean" on unknown keys."""
    model = _model_at(path)
    return sorted(f.alias or n for n, f in model.model_fields.items()) if model else []


def _is_required(path: PathKey) -> bool:
    model = _model_at(path[:-1])
    fields = model.model_fields if model else {}
    return any(path[-1] in (n, f.alias) and f.is_required() for n, f in fields.items())


def _suggest_key(key: str, parent: PathKey) -> str | None:
    """The key at `parent` closest to `key`, or a key one level down when that is closer:
    a top-level `retries:` means `error_handling.max_retries`, not `routes`."""
    scored = [(k, k) for k in _known_keys(parent)]
    for child in _known_keys(parent):
        if _model_at((*parent, child)) is not None:
            scored += [(f"{child}.{k}", k) for k in _known_keys((*parent, child))]
    best = max(
        scored,
        key=lambda item: difflib.SequenceMatcher(None, key, item[1]).ratio(),
        default=None,
    )
    if best is None or difflib.SequenceMatcher(None, key, best[1]).ratio() < 0.6:
        return None
    return best[0]


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{value!r}"


# -- 2. raw checks ------------------------------------------------------------------


def _check_raw(data: dict[str, Any], registry: AdapterRegistry, out: _Collector) -> None:
    name = data.get("name")
    if isinstance(name, str) and not _PIPELINE_NAME_RE.match(name):
        out.add(
            "E106",
            ("name",),
            f"invalid pipeline name {name!r}",
            "use lowercase letters, digits, '-' and '_' only",
        )
    _check_providers(data, out)
    _check_numbers(("backpressure",), data.get("backpressure"), out)
    triggers = data.get("triggers")
    if isinstance(triggers, list):
        for index, trigger in enumerate(triggers):
            for found in trigger_problems(trigger, ("triggers", index)):
                out.add_problem((), found)
    routes = data.get("routes")
    if not isinstance(routes, dict):
        return
    for route_id, route in routes.items():
        base: PathKey = ("routes", route_id)
        if not _ROUTE_ID_RE.match(route_id):
            out.add(
                "E106",
                base,
                f"invalid route id {route_id!r}",
                "start with a letter or '_', then letters, digits, '_' or '-'",
                at_key=True,
            )
        if not isinstance(route, dict):
            continue
        _check_numbers((*base, "backpressure"), route.get("backpressure"), out)
        inbound = route.get("inbound")
        if isinstance(inbound, dict):
            concurrency, prefetch = inbound.get("concurrency", 1), inbound.get("prefetch")
            if _ints(concurrency, prefetch) and prefetch < concurrency:
                out.add(
                    "W502",
                    (*base, "inbound", "prefetch"),
                    f"prefetch {prefetch} is below concurrency {concurrency}: at most "
                    f"{prefetch} messages run at once",
                    f"raise prefetch to at least {concurrency}, or lower concurrency",
                )
        key = route.get("key")
        if key is not None and (problem := field_path_problem(key, ("key",))):
            out.add_problem(base, problem)
        outbound = route.get("outbound")
        for i, item in enumerate(outbound if isinstance(outbound, list) else [outbound]):
            if isinstance(item, dict) and "condition" in item:
                where: PathKey = (*base, "outbound", i) if isinstance(outbound, list) else (
                    *base, "outbound",
                )  # fmt: skip
                for problem in condition_problems(item["condition"], ("condition",)):
                    out.add_problem(where, problem)
            if isinstance(item, dict) and isinstance(item.get("sink"), dict):
                where = (*base, "outbound", i) if isinstance(outbound, list) else (
                    *base, "outbound",
                )  # fmt: skip
                _check_sink((*where, "sink"), item["sink"], out)
        adapters = route.get("adapters")
        if isinstance(adapters, list):
            for index, adapter in enumerate(adapters):
                if isinstance(adapter, dict):
                    _check_adapter((*base, "adapters", index), adapter, registry, out)


def _ints(*values: Any) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def _check_numbers(path: PathKey, backpressure: Any, out: _Collector) -> None:
    if not isinstance(backpressure, dict):
        return
    low: Any = backpressure.get("min_concurrency")
    high: Any = backpressure.get("max_concurrency")
    if _ints(low, high) and low > high:
        out.add(
            "E404",
            (*path, "min_concurrency"),
            f"min_concurrency {low} is above max_concurrency {high}",
            "make min_concurrency <= max_concurrency",
        )


def _check_providers(data: dict[str, Any], out: _Collector) -> None:
    queue = data.get("queue")
    if isinstance(queue, dict) and isinstance(provider := queue.get("provider"), str):
        spec = _provider(provider)
        if spec is None:
            close = difflib.get_close_matches(provider, provider_names(), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            out.add(
                "E401",
                ("queue", "provider"),
                f"unknown queue provider {provider!r}",
                f"{hint}providers: {', '.join(provider_names())}",
            )
        elif provider == "file" and not queue.get("path"):
            out.add(
                "E406",
                ("queue",),
                "the file provider needs `path` (the folder of the .jsonl queue files)",
                "add `path: ./data` to `queue:`",
            )
        elif spec.extra is not None:
            _check_extra(("queue", "provider"), f"queue provider {provider!r}", spec.extra, out)
    storage = data.get("storage")
    if isinstance(storage, dict) and isinstance(uri := storage.get("uri"), str):
        scheme = uri.split("://", 1)[0] if "://" in uri else ""
        if scheme not in STORAGE_SCHEMES:
            out.add(
                "E403",
                ("storage", "uri"),
                f"unknown storage URI scheme in {uri!r}",
                "use file://PATH, s3://BUCKET/PREFIX or minio://BUCKET/PREFIX",
            )
        elif (extra := STORAGE_EXTRAS.get(scheme)) is not None:
            _check_extra(("storage", "uri"), f"storage {scheme}://", extra, out)


def _provider(name: str | None) -> ProviderSpec | None:
    """The spec of provider `name`; None when no provider or an unknown one (E401)."""
    if name is None:
        return None
    try:
        return get_provider(name)
    except UnknownProviderError:
        return None


def _check_extra(path: PathKey, what: str, extra: Extra, out: _Collector) -> None:
    if (problem := missing_extra_problem(path, what, extra)) is not None:
        out.add_problem((), problem)


def _check_adapter(
    path: PathKey, adapter: dict[str, Any], registry: AdapterRegistry, out: _Collector
) -> None:
    if "condition" in adapter:
        for problem in condition_problems(adapter["condition"], ("condition",)):
            out.add_problem(path, problem)
    type_name = adapter.get("type")
    if not isinstance(type_name, str):
        return
    try:
        cls = registry.resolve(type_name)
    except UnknownAdapterError as exc:
        hint = f"did you mean '{exc.suggestions[0]}'? " if exc.suggestions else ""
        out.add(
            "E103",
            (*path, "type"),
            str(exc),
            f"{hint}register the adapter, or use `package.module:ClassName`; known: "
            f"{', '.join(registry.names())}",
        )
        return
    except AdapterRegistrationError as exc:
        out.add("E107", (*path, "type"), str(exc), "fix the adapter class or the dotted path")
        return
    config = adapter.get("config")
    config = {} if config is None else config
    if isinstance(config, dict):
        _check_adapter_config((*path, "config"), cls, config, out)


def _check_sink(path: PathKey, sink: dict[str, Any], out: _Collector) -> None:
    """A `sink: {type, config}` outbound: a known writer whose schema the config meets."""
    type_name = sink.get("type")
    if not isinstance(type_name, str):
        return
    writers = default_writers()
    try:
        cls = writers.resolve(type_name)
    except UnknownWriterError as exc:
        hint = f"did you mean '{exc.suggestions[0]}'? " if exc.suggestions else ""
        out.add(
            "E113",
            (*path, "type"),
            str(exc),
            f"{hint}register the writer (entry point group `factflow.writers`), or use "
            f"`package.module:ClassName`; known: {', '.join(writers.names())}",
        )
        return
    except AdapterRegistrationError as exc:
        out.add("E114", (*path, "type"), str(exc), "fix the writer class or the dotted path")
        return
    config = sink.get("config")
    if isinstance(config, dict) or config is None:
        for error in jsonschema.Draft202012Validator(cls.config_schema).iter_errors(config or {}):
            _schema_issue((*path, "config"), cls, error, out)


def _check_adapter_config(
    path: PathKey, cls: type[Adapter], config: dict[str, Any], out: _Collector
) -> None:
    errors = list(jsonschema.Draft202012Validator(cls.config_schema).iter_errors(config))
    for error in errors:
        _schema_issue(path, cls, error, out)
    if not errors:
        for problem in cls.check_config(config):
            out.add_problem(path, problem)


def _schema_issue(
    path: PathKey,
    cls: type[Adapter] | type[Writer],
    error: jsonschema.ValidationError,
    out: _Collector,
) -> None:
    at: PathKey = (*path, *error.absolute_path)
    instance = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    properties = sorted(schema.get("properties", {}))
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        for key in sorted(set(instance) - set(properties)):
            close = difflib.get_close_matches(key, properties, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            fields = ", ".join(properties) or "none"
            out.add(
                "E301",
                (*at, key),
                f"unknown config field '{key}' for adapter '{cls.name}'",
                f"{hint}fields of '{cls.name}': {fields}",
                at_key=True,
            )
    elif error.validator == "required" and isinstance(instance, dict):
        for key in schema.get("required", []):
            if key not in instance:
                out.add(
                    "E302",
                    at,
                    f"adapter '{cls.name}' needs config field '{key}'",
                    f"add `{key}:` under `config:`",
                    at_key=True,
                )
    else:
        where = format_path(at)
        out.add("E303", at, f"{where}: {error.message}", "fix the value to match the schema")


# -- 3. references ------------------------------------------------------------------


def _check_references(config: PipelineConfig, registry: AdapterRegistry, out: _Collector) -> None:
    graph = QueueGraph.of(config)
    provider = config.queue.provider if config.queue else None
    init = config.init_message
    if init is not None and init.route not in config.routes:
        close = difflib.get_close_matches(init.route, list(config.routes), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        out.add(
            "E201",
            ("init_message", "route"),
            f"init_message.route '{init.route}' names no route",
            f"{hint}routes: {', '.join(config.routes)}",
        )
    init_route = config.routes.get(init.route) if init else None
    init_queue = init_route.inbound.queue if init_route else None
    inbound_queues = {r.inbound.queue for r in config.routes.values()}
    trigger_queues = {t.input_queue for t in config.triggers if t.input_queue is not None}
    for route_id, route in config.routes.items():
        base: PathKey = ("routes", route_id)
        queue = route.inbound.queue
        written = queue in graph.writers
        init_unknown = init is not None and init_route is None  # E201 says it already
        # a trigger's input_queue is fed by the events it starts executions for
        fed = queue == init_queue or queue in trigger_queues
        unfed = not written and not fed and not init_unknown
        typo = _similar_written(queue, graph) if unfed else None
        hint = (
            f"did you mean '{typo}' (written by {_routes(graph.writers[typo])})? " if typo else ""
        )
        if unfed and provider is None:
            out.add(
                "E202",
                (*base, "inbound", "queue"),
                f"route '{route_id}' reads '{queue}', which no route writes and no queue "
                "provider serves",
                f"{hint}add a `queue: {{provider: ...}}` section so it is read from a broker "
                "or file, point another route's outbound at it, or make it the init_message "
                "route",
            )
        elif typo is not None:
            out.add(
                "W507",
                (*base, "inbound", "queue"),
                f"route '{route_id}' reads '{queue}', which no route writes, while "
                f"{_routes(graph.writers[typo])} writes '{typo}'",
                f"{hint}if '{queue}' is fed from outside the pipeline, ignore this",
            )
        if queue in {q for _, q in route.queue_outbounds} and not route.loop:
            index = next(i for i, q in route.queue_outbounds if q == queue)
            out.add(
                "E204",
                (*base, "outbound", index, "queue"),
                f"route '{route_id}' writes its own inbound queue '{queue}'",
                "write to another queue, or set `loop: true` on the route if the loop is "
                "meant (and make sure it ends)",
            )
        for index, name in route.queue_outbounds:
            _check_queue_name(provider, name, (*base, "outbound", index, "queue"), out)
        _check_queue_name(provider, queue, (*base, "inbound", "queue"), out)
        dlq = _dead_letter_queue(config, route_id)
        if dlq is not None:
            if dlq in inbound_queues:
                out.add(
                    "E205",
                    _dlq_path(config, route_id),
                    f"dead-letter queue '{dlq}' of route '{route_id}' is also a route's "
                    "inbound queue: failed messages would be processed again forever",
                    "give dead letters a queue of their own",
                )
            _check_queue_name(provider, dlq, _dlq_path(config, route_id), out)
        _check_route_warnings(config, route_id, registry, out)
    _check_trigger_references(config, inbound_queues, out)
    for route_id, route in config.routes.items():
        if route.loop and ((spec := _provider(provider)) is None or spec.finite):
            out.add(
                "E206",
                ("routes", route_id, "loop"),
                f"route '{route_id}' loops, and a loop runs through the queue provider, but "
                + ("no provider is set" if provider is None else f"'{provider}' cannot carry it"),
                "use a broker or postgres provider (`queue: {provider: postgres}`), or "
                "remove the loop",
            )
    for cycle in graph.cycles(config):
        if not any(config.routes[r].loop for r in cycle):
            out.add(
                "E203",
                ("routes", cycle[0]),
                "routes form a cycle: " + " -> ".join([*cycle, cycle[0]]),
                "set `loop: true` on one route of the cycle if it is meant, or break it",
                at_key=True,
            )
    if init is None and provider in (None, "memory") and not trigger_queues:
        out.add(
            "W504",
            ("routes",),
            "nothing starts the pipeline: no init_message, and in-memory queues hold only "
            "what a test or `factflow run --input` puts in",
            "add `init_message:` naming the first route, or a `queue:` provider to read from",
            at_key=True,
        )


def _check_trigger_references(
    config: PipelineConfig, inbound_queues: set[str], out: _Collector
) -> None:
    for index, trigger in enumerate(config.triggers):
        at: PathKey = ("triggers", index)
        queue = trigger.input_queue
        if queue is not None and queue not in inbound_queues:
            close = difflib.get_close_matches(queue, sorted(inbound_queues), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            out.add(
                "E207",
                (*at, "input_queue"),
                f"trigger input_queue '{queue}' is no route's inbound queue: the event's "
                "data would reach no route",
                f"{hint}inbound queues: {', '.join(sorted(inbound_queues))}",
            )
        if trigger.init_payload and config.init_message is None:
            out.add(
                "E208",
                (*at, "init_payload"),
                "the trigger merges the event into the init_message payload, but the "
                "pipeline has no init_message",
                "add `init_message:`, or send the event with `input_queue:` instead",
            )


TYPO_CUTOFF = 0.85
"""How alike (difflib ratio) two queue names must be for one to look like a typo of the
other: `paragrahps`/`paragraphs` is 0.9, `docs.in`/`docs.out` only 0.67."""


def _similar_written(queue: str, graph: QueueGraph) -> str | None:
    close = difflib.get_close_matches(queue, list(graph.writers), n=1, cutoff=TYPO_CUTOFF)
    return close[0] if close else None


def _routes(route_ids: list[str]) -> str:
    return ("route " if len(route_ids) == 1 else "routes ") + ", ".join(f"'{r}'" for r in route_ids)


def _dead_letter_queue(config: PipelineConfig, route_id: str) -> str | None:
    route = config.routes[route_id]
    for handling in (route.error_handling, config.error_handling):
        if handling is not None and handling.dead_letter_queue:
            return handling.dead_letter_queue
    return None


def _dlq_path(config: PipelineConfig, route_id: str) -> PathKey:
    route = config.routes[route_id]
    if route.error_handling is not None and route.error_handling.dead_letter_queue:
        return ("routes", route_id, "error_handling", "dead_letter_queue")
    return ("error_handling", "dead_letter_queue")


def _check_queue_name(provider: str | None, name: str, path: PathKey, out: _Collector) -> None:
    spec = _provider(provider)
    rule = None if spec is None else spec.queue_name_problem(name)
    if rule is not None:
        out.add("E402", path, f"queue name '{name}' is not valid for {provider}", rule)


def _is_stateful(registry: AdapterRegistry, type_name: str) -> bool:
    try:
        return registry.resolve(type_name).stateful
    except (UnknownAdapterError, AdapterRegistrationError):
        return False  # already reported as E103 / E107


def _check_route_warnings(
    config: PipelineConfig, route_id: str, registry: AdapterRegistry, out: _Collector
) -> None:
    route = config.routes[route_id]
    base: PathKey = ("routes", route_id)
    registry_stateful = [i for i, a in enumerate(route.adapters) if _is_stateful(registry, a.type)]
    if registry_stateful and route.key is None:
        index = registry_stateful[0]
        out.add(
            "W501",
            (*base, "adapters", index, "type"),
            f"stateful adapter '{route.adapters[index].type}' on a route without `key:`: "
            "all of its state sits on one worker",
            "add `key: <field path>` to the route so the state is spread by key",
        )
    if route.key is not None and not registry_stateful:
        out.add(
            "W505",
            (*base, "key"),
            f"route '{route_id}' has `key:` but no stateful adapter: keying only adds an "
            "exchange between workers",
            "remove `key:`, or add the stateful adapter that needs it",
        )
    if not route.outbound:
        last = route.adapters[-1] if route.adapters else None
        store = last.store if last is not None and last.store is not None else route.store
        if last is None or store is False:
            out.add(
                "W506",
                base,
                f"route '{route_id}' has no outbound and "
                + ("no adapters" if last is None else "its last adapter does not store")
                + ": its results go nowhere",
                "add `outbound:` with a queue, or let the last adapter store its output",
                at_key=True,
            )
    if route.outbound and all(o.condition is not None for o in route.outbound):
        out.add(
            "W503",
            (*base, "outbound"),
            f"every outbound of route '{route_id}' has a condition: results matching none "
            "of them are dropped",
            "add an outbound without a condition as a catch-all",
            at_key=True,
        )
