"""The plan: edges, sources, sinks, dead letters, step ids, stateful routes, policies."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from factflow.compiler.compile import compile_text
from factflow.compiler.plan import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_DELAY_SECONDS,
    DEFAULT_TARGET_LATENCY_MS,
    Plan,
    step_id,
)


def plan_of(yaml_text: str) -> Plan:
    result = compile_text(textwrap.dedent(yaml_text).lstrip("\n"))
    assert result.report.errors == [], [i.to_dict() for i in result.report.errors]
    assert result.plan is not None
    return result.plan


def edges(plan: Plan) -> set[tuple[str, str, str]]:
    return {(e.queue, e.from_route, e.to_route) for e in plan.edges}


def endpoints(items: tuple[object, ...]) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {e.queue: (e.provider, e.routes) for e in items}  # type: ignore[attr-defined]


CHAIN = """
version: "1.0"
routes:
  fetch:
    inbound: {queue: urls}
    adapters: [{type: passthrough}]
    outbound: [pages, pages.copy]
  parse:
    inbound: {queue: pages}
    adapters: [{type: passthrough}]
    outbound: docs
  mirror:
    inbound: {queue: pages.copy}
  index:
    inbound: {queue: docs}
    adapters: [{type: passthrough}]
    outbound: [indexed, docs.audit]
  audit:
    inbound: {queue: docs.audit}
    adapters: [{type: passthrough}]
    outbound: indexed
init_message: {route: fetch, payload: {url: "https://example.org/"}}
"""


def test_queues_written_and_read_inside_are_edges() -> None:
    plan = plan_of(CHAIN)
    assert edges(plan) == {
        ("pages", "fetch", "parse"),
        ("pages.copy", "fetch", "mirror"),
        ("docs", "parse", "index"),
        ("docs.audit", "index", "audit"),
    }


def test_queue_only_written_is_a_sink_with_all_its_writers() -> None:
    plan = plan_of(CHAIN)
    assert endpoints(plan.sinks) == {"indexed": ("memory", ("index", "audit"))}


def test_init_only_queue_without_provider_is_no_source() -> None:
    plan = plan_of(CHAIN)
    assert plan.sources == ()
    assert plan.queue.provider == "memory"
    assert plan.init_message is not None
    assert (plan.init_message.route, plan.init_message.queue) == ("fetch", "urls")
    assert plan.init_message.payload == {"url": "https://example.org/"}
    assert plan.init_message.metadata == {}


def test_init_queue_with_a_provider_is_scoped_and_no_source() -> None:
    # fed by the init message, so scoped to the execution: no outside producer can write
    # it, and the execution can finish once the init message's work is done
    plan = plan_of(CHAIN.replace("routes:", "queue: {provider: file, path: ./q}\nroutes:", 1))
    assert plan.sources == ()
    assert "urls" in plan.scoped_queues
    assert endpoints(plan.sinks) == {"indexed": ("file", ("index", "audit"))}
    assert plan.init_message is not None


def test_init_queue_with_scope_global_is_also_a_source() -> None:
    text = CHAIN.replace("routes:", "queue: {provider: file, path: ./q}\nroutes:", 1)
    plan = plan_of(text.replace("queue: urls", "queue: urls, scope: global", 1))
    assert endpoints(plan.sources) == {"urls": ("file", ("fetch",))}
    assert plan.sources[0].scope == "global"
    assert "urls" not in plan.scoped_queues
    assert not plan.drains  # a global source: runs until cancelled or idle


def test_scoped_names_follow_each_provider_s_rules() -> None:
    from factflow.providers.registry import get_provider

    execution = "3f2b7c1e-9a4d-4e8b-8c55-1d0e6f7a2b90"
    cases = {
        "rabbitmq": "urls",
        "postgres": "urls",
        "kafka": "urls",
        "stomp": "/queue/urls",
        "pulsar": "persistent://public/default/urls",
    }
    for provider, queue in cases.items():
        name = get_provider(provider).scoped_queue(queue, execution)
        assert execution in name, name
        assert get_provider(provider).queue_name_problem(name) is None, (provider, name)
    assert get_provider("rabbitmq").scoped_queue("urls", execution) == f"exec:{execution}:urls"
    assert (
        get_provider("stomp").scoped_queue("/queue/urls", execution)
        == f"/queue/exec.{execution}.urls"
    )


def test_queue_only_read_with_a_provider_is_a_source() -> None:
    plan = plan_of(
        """
        version: "1.0"
        queue: {provider: rabbitmq, url: "amqp://guest:guest@127.0.0.1:5672/"}
        routes:
          a:
            inbound: {queue: in.a}
            outbound: out
          b:
            inbound: {queue: in.b}
            outbound: out
        """
    )
    assert endpoints(plan.sources) == {
        "in.a": ("rabbitmq", ("a",)),
        "in.b": ("rabbitmq", ("b",)),
    }
    assert endpoints(plan.sinks) == {"out": ("rabbitmq", ("a", "b"))}
    assert plan.edges == ()
    assert plan.init_message is None
    assert plan.queue.url == "amqp://guest:guest@127.0.0.1:5672/"


def test_external_inbound_forces_a_broker_hop() -> None:
    plan = plan_of(
        """
        version: "1.0"
        queue: {provider: kafka, url: "127.0.0.1:9092"}
        routes:
          a:
            inbound: {queue: in}
            outbound: mid
          b:
            inbound: {queue: mid, external: true}
            outbound: out
        """
    )
    assert edges(plan) == set()  # no in-dataflow edge for mid
    assert endpoints(plan.sinks) == {"mid": ("kafka", ("a",)), "out": ("kafka", ("b",))}
    assert endpoints(plan.sources) == {"in": ("kafka", ("a",)), "mid": ("kafka", ("b",))}
    assert plan.route("b").external is True
    assert plan.route("a").external is False


def test_external_reader_next_to_an_internal_one() -> None:
    plan = plan_of(
        """
        version: "1.0"
        queue: {provider: postgres}
        routes:
          a:
            inbound: {queue: in}
            outbound: mid
          near:
            inbound: {queue: mid}
            outbound: done
          far:
            inbound: {queue: mid, external: true}
            outbound: done
        """
    )
    assert edges(plan) == {("mid", "a", "near")}
    assert "mid" in endpoints(plan.sinks)
    # near gets mid through the edge; only far reads it back from the provider
    assert endpoints(plan.sources)["mid"] == ("postgres", ("far",))


# -- dead letters -------------------------------------------------------------------

ONE_ROUTE = """
version: "1.0"
{queue}
routes:
  crawl:
    inbound: {{queue: {inbound}}}
    outbound: {outbound}
"""


@pytest.mark.parametrize(
    ("queue", "inbound", "outbound", "dlq"),
    [
        ("", "in", "out", "crawl.dlq"),
        ("queue: {provider: memory}", "in", "out", "crawl.dlq"),
        ("queue: {provider: file, path: ./q}", "in", "out", "crawl.dlq"),
        ("queue: {provider: postgres}", "in", "out", "crawl.dlq"),
        ("queue: {provider: rabbitmq}", "in", "out", "crawl.dlq"),
        ("queue: {provider: kafka}", "in", "out", "crawl.dlq"),
        ("queue: {provider: stomp}", "/queue/in", "/queue/out", "/queue/crawl.dlq"),
        (
            "queue: {provider: pulsar}",
            "persistent://public/default/in",
            "persistent://public/default/out",
            "persistent://public/default/crawl.dlq",
        ),
    ],
)
def test_default_dead_letter_queue_is_shaped_per_provider(
    queue: str, inbound: str, outbound: str, dlq: str
) -> None:
    text = ONE_ROUTE.format(queue=queue, inbound=inbound, outbound=outbound)
    if not queue:
        text += "init_message: {route: crawl}\n"
    plan = plan_of(text)
    assert plan.route("crawl").dead_letter_queue == dlq
    [letters] = plan.dead_letters
    assert (letters.route, letters.queue, letters.provider) == ("crawl", dlq, plan.queue.provider)


def test_explicit_dead_letter_queue_top_level_and_route_override() -> None:
    plan = plan_of(
        """
        version: "1.0"
        queue: {provider: stomp}
        error_handling: {dead_letter_queue: /queue/dead}
        routes:
          a:
            inbound: {queue: /queue/in}
            outbound: /queue/mid
          b:
            inbound: {queue: /queue/mid}
            outbound: /queue/out
            error_handling: {dead_letter_queue: /queue/b.failed}
        """
    )
    assert {d.route: d.queue for d in plan.dead_letters} == {
        "a": "/queue/dead",
        "b": "/queue/b.failed",
    }


# -- step ids -----------------------------------------------------------------------

BASE = """
version: "1.0"
description: the base
queue: {provider: file, path: ./q}
routes:
  ingest:
    description: first
    inbound: {queue: docs.in}
    adapters:
      - type: set_metadata
        config: {values: {a: 1}}
      - type: split
        config: {field: paragraphs}
    outbound: paragraphs
  dedupe:
    inbound: {queue: paragraphs}
    key: text
    adapters:
      - type: deduplicate
        config: {key: text}
      - type: filter
        config: {field: text, operator: exists}
    outbound: out
"""

EXTRA_ROUTE = """
  audit:
    inbound: {queue: out}
    adapters: [{type: passthrough}]
    outbound: audited
"""

REORDERED = """
version: "1.0"
queue: {provider: file, path: ./q}
routes:
  dedupe:
    inbound: {queue: paragraphs}
    key: text
    adapters:
      - type: deduplicate
        config: {key: text}
      - type: filter
        config: {field: text, operator: exists}
    outbound: out
  ingest:
    inbound: {queue: docs.in}
    adapters:
      - type: set_metadata
        config: {values: {a: 1}}
      - type: split
        config: {field: paragraphs}
    outbound: paragraphs
"""


def step_ids(plan: Plan) -> dict[tuple[str, int], str]:
    return {(r.id, a.index): a.step_id for r in plan.routes for a in r.adapters}


def test_step_ids_are_route_index_and_type() -> None:
    assert step_ids(plan_of(BASE)) == {
        ("ingest", 0): "ingest__0_set_metadata",
        ("ingest", 1): "ingest__1_split",
        ("dedupe", 0): "dedupe__0_deduplicate",
        ("dedupe", 1): "dedupe__1_filter",
    }


def test_step_ids_have_no_dots() -> None:
    # Bytewax forbids '.' in step ids
    assert step_id("my-route", 3, "pkg.mod:Cls") == "my_route__3_pkg_mod_Cls"


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda t: t.replace("the base", "another text"), id="description"),
        pytest.param(lambda t: t.replace("first", "a new route text"), id="route-description"),
        pytest.param(lambda t: t.replace("{values: {a: 1}}", "{values: {b: 2}}"), id="config"),
        pytest.param(lambda t: t.replace("operator: exists", "operator: eq, value: x"), id="cond"),
        pytest.param(lambda t: t.replace("outbound: out", "outbound: [out, more]"), id="outbound"),
        pytest.param(lambda t: t.replace("file, path: ./q", "postgres"), id="provider"),
        pytest.param(lambda t: t + EXTRA_ROUTE, id="added-route"),
        pytest.param(lambda _: REORDERED, id="reordered-routes"),
    ],
)
def test_step_ids_survive_unrelated_edits(edit: object) -> None:
    before = step_ids(plan_of(BASE))
    after = step_ids(plan_of(edit(BASE)))  # type: ignore[operator]
    assert {k: v for k, v in after.items() if k in before} == before
    assert set(before) <= set(after)


def test_step_ids_change_with_the_adapter_type_or_index() -> None:
    before = step_ids(plan_of(BASE))
    retyped = step_ids(
        plan_of(
            BASE.replace("config: {field: text, operator: exists}", "").replace(
                "- type: filter", "- type: passthrough"
            )
        )
    )
    assert retyped[("dedupe", 1)] == "dedupe__1_passthrough" != before[("dedupe", 1)]
    assert retyped[("dedupe", 0)] == before[("dedupe", 0)]
    inserted = step_ids(
        plan_of(
            BASE.replace(
                "    adapters:\n      - type: set_metadata",
                "    adapters:\n      - type: passthrough\n      - type: set_metadata",
            )
        )
    )
    assert inserted[("ingest", 0)] == "ingest__0_passthrough"
    assert inserted[("ingest", 1)] == "ingest__1_set_metadata"
    assert inserted[("ingest", 2)] == "ingest__2_split"
    assert inserted[("dedupe", 0)] == before[("dedupe", 0)]


def test_adapter_name_changes_the_stage_not_the_step_id() -> None:
    plan = plan_of(BASE.replace("- type: split", "- type: split\n        name: paragraphs"))
    step = plan.route("ingest").adapters[1]
    assert (step.stage, step.step_id) == ("paragraphs", "ingest__1_split")
    assert plan_of(BASE).route("ingest").adapters[1].stage == "split"


# -- stateful routes, store, format -------------------------------------------------


def test_stateful_routes_are_marked() -> None:
    plan = plan_of(BASE)
    assert plan.route("dedupe").stateful is True
    assert plan.route("ingest").stateful is False
    assert [a.stateful for a in plan.route("dedupe").adapters] == [True, False]
    assert plan.route("dedupe").key == "text"
    assert plan.route("ingest").key is None


def test_store_resolution_adapter_then_route_then_true() -> None:
    plan = plan_of(
        BASE.replace(
            "    inbound: {queue: docs.in}", "    store: false\n    inbound: {queue: docs.in}"
        ).replace("- type: split", "- type: split\n        store: true")
    )
    assert [a.store for a in plan.route("ingest").adapters] == [False, True]
    assert [a.store for a in plan.route("dedupe").adapters] == [True, True]


def test_inbound_defaults_and_format() -> None:
    plan = plan_of(
        """
        version: "1.0"
        queue: {provider: kafka, format: raw}
        routes:
          a:
            inbound: {queue: in, concurrency: 8}
            outbound: {queue: out, format: raw}
          b:
            inbound: {queue: in2, subscription: bees, prefetch: 3, concurrency: 2, format: raw}
            outbound: out
        """
    )
    a, b = plan.route("a"), plan.route("b")
    assert (a.subscription, a.prefetch, a.format) == ("a-processors", 16, "raw")
    assert (b.subscription, b.prefetch) == ("bees", 3)
    assert a.outbound[0].format == "raw"
    assert plan_of(CHAIN).route("parse").prefetch == 10


# -- retries and concurrency --------------------------------------------------------

POLICIES = """
version: "1.0"
error_handling: {max_retries: 5, retry_delay_seconds: 2, backoff: fixed}
backpressure: {target_latency_ms: 250, min_concurrency: 2, max_concurrency: 16}
routes:
  inherit:
    inbound: {queue: in, concurrency: 4}
    outbound: mid
  own:
    inbound: {queue: mid, concurrency: 32}
    outbound: out
    error_handling: {max_retries: 0, max_retry_delay_seconds: 9}
    backpressure: {max_concurrency: 8, min_concurrency: 1}
init_message: {route: inherit}
"""


def test_retry_inherited_from_the_top_level() -> None:
    retry = plan_of(POLICIES).route("inherit").retry
    assert (retry.max_retries, retry.retry_delay_seconds, retry.backoff) == (5, 2, "fixed")
    assert retry.delay(1) == retry.delay(4) == 2


def test_retry_route_overrides_field_by_field() -> None:
    retry = plan_of(POLICIES).route("own").retry
    assert retry.max_retries == 0  # the route's
    assert retry.retry_delay_seconds == 2  # the top level's
    assert retry.backoff == "fixed"
    assert retry.max_retry_delay_seconds == 9


def test_retry_defaults_and_exponential_backoff() -> None:
    retry = plan_of(CHAIN).route("fetch").retry
    assert retry.max_retries == DEFAULT_MAX_RETRIES
    assert retry.retry_delay_seconds == DEFAULT_RETRY_DELAY_SECONDS
    assert retry.backoff == "exponential"
    assert [retry.delay(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert retry.delay(30) == retry.max_retry_delay_seconds


def test_concurrency_inherited_and_overridden() -> None:
    plan = plan_of(POLICIES)
    inherit, own = plan.route("inherit").concurrency, plan.route("own").concurrency
    assert (inherit.initial, inherit.minimum, inherit.maximum) == (4, 2, 16)
    assert inherit.target_latency_ms == 250
    # the route's max (8) is below its inbound concurrency (32): the maximum is raised to it
    assert (own.initial, own.minimum, own.maximum) == (32, 1, 32)
    assert own.target_latency_ms == 250
    default = plan_of(CHAIN).route("fetch").concurrency
    assert (default.initial, default.minimum, default.maximum) == (1, 1, 1)
    assert default.target_latency_ms == DEFAULT_TARGET_LATENCY_MS


# -- the JSON shape -----------------------------------------------------------------


def test_to_dict_has_the_documented_shape() -> None:
    text = (
        textwrap.dedent(BASE).replace(
            "    outbound: out",
            "    outbound:\n"
            "      - queue: out\n"
            "        condition: {field: a, operator: eq, value: 1}\n"
            "      - rest",
        )
        + "init_message: {route: ingest, payload: {paragraphs: [x]}}\n"
    ).replace("inbound: {queue: docs.in}", "inbound: {queue: docs.in, scope: global}")
    plan = plan_of(text)
    data = json.loads(json.dumps(plan.to_dict()))
    assert {
        "pipeline",
        "routes",
        "edges",
        "sources",
        "sinks",
        "init_message",
        "dead_letters",
    } <= set(data)
    assert data["pipeline"] == "pipeline"
    route = data["routes"][1]
    assert route["id"] == "dedupe"
    assert route["inbound"]["queue"] == "paragraphs"
    assert [(a["type"], a["step_id"]) for a in route["adapters"]] == [
        ("deduplicate", "dedupe__0_deduplicate"),
        ("filter", "dedupe__1_filter"),
    ]
    assert route["outbound"] == [
        {"queue": "out", "condition": {"field": "a", "operator": "eq", "value": 1}},
        {"queue": "rest", "condition": None},
    ]
    assert route["stateful"] is True
    assert data["edges"] == [{"queue": "paragraphs", "from": "ingest", "to": "dedupe"}]
    assert {
        "queue": "docs.in",
        "provider": "file",
        "routes": ["ingest"],
        "scope": "global",
    } in data["sources"]
    assert [(s["queue"], s["provider"]) for s in data["sinks"]] == [
        ("out", "file"),
        ("rest", "file"),
    ]
    assert data["init_message"] == {
        "route": "ingest",
        "queue": "docs.in",
        "payload": {"paragraphs": ["x"]},
        "metadata": {},
    }
    assert data["dead_letters"] == [
        {"route": "ingest", "queue": "ingest.dlq", "provider": "file"},
        {"route": "dedupe", "queue": "dedupe.dlq", "provider": "file"},
    ]


def test_condition_with_not_serialises_under_its_yaml_name() -> None:
    plan = plan_of(
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: in}
            outbound:
              - queue: other
                condition: {not: {field: lang, operator: eq, value: en}}
              - all
        init_message: {route: a}
        """
    )
    outbound = plan.to_dict()["routes"][0]["outbound"][0]
    assert outbound["condition"] == {"not": {"field": "lang", "operator": "eq", "value": "en"}}


def test_pipeline_name_from_yaml_or_file_and_config_hash() -> None:
    named = compile_text('version: "1.0"\nname: docs\n' + CHAIN.split('version: "1.0"\n', 1)[1])
    assert named.plan is not None and named.plan.pipeline == "docs"
    from_file = compile_text(CHAIN, file="pipelines/crawl.yaml")
    assert from_file.plan is not None and from_file.plan.pipeline == "crawl"
    again = compile_text(CHAIN + "\n# a comment\n", file="x.yaml")
    assert again.plan is not None
    assert again.plan.config_hash == from_file.plan.config_hash  # the data, not the text
    changed = compile_text(CHAIN.replace("example.org", "example.com"))
    assert changed.plan is not None and changed.plan.config_hash != from_file.plan.config_hash


def test_route_lookup_names_the_pipeline_when_missing() -> None:
    with pytest.raises(KeyError, match="no route 'nope' in pipeline"):
        plan_of(CHAIN).route("nope")


def test_every_shipped_plan_survives_its_json_round_trip() -> None:
    from factflow.compiler.compile import compile_file
    from factflow.compiler.plan_codec import plan_from_json, plan_to_json

    shipped = sorted((Path(__file__).parents[3] / "pipelines").glob("*.yaml"))
    assert shipped
    for path in shipped:
        plan = compile_file(path).require_plan()
        assert plan_from_json(plan_to_json(plan)) == plan, path.name


def test_overrides_are_applied_before_validation() -> None:
    from factflow.compiler.compile import compile_text
    from factflow.compiler.overrides import Overrides

    text = CHAIN
    plain = compile_text(text).require_plan()
    placed = compile_text(text, overrides=Overrides(default_provider="postgres")).require_plan()
    assert plain.queue.provider == "memory"
    assert placed.queue.provider == "postgres"
    assert placed.config_hash == plain.config_hash  # the hash is of the YAML as written
