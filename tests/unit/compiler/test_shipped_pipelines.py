"""Every shipped pipeline compiles; so do the seed system's examples (with stand-ins)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from factflow import Adapter, Context, Message
from factflow.adapters.registry import AdapterRegistry, default_registry
from factflow.compiler.compile import compile_file, compile_text
from factflow.providers.registry import get_provider

PIPELINES = Path(__file__).resolve().parents[3] / "pipelines"
SHIPPED = sorted(PIPELINES.glob("*.yaml"))
PROVIDERS = ["rabbitmq", "stomp", "pulsar", "kafka", "postgres"]


def test_there_is_a_pipeline_per_broker_provider() -> None:
    names = {p.name for p in SHIPPED}
    assert {"text.yaml", *(f"text-{p}.yaml" for p in PROVIDERS)} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_pipeline_compiles_without_issues(path: Path) -> None:
    result = compile_file(path, strict=True)
    assert result.report.issues == (), [i.to_dict() for i in result.report.issues]
    plan = result.require_plan()
    assert plan.init_message is not None
    assert plan.pipeline == path.stem


@pytest.mark.parametrize("provider", PROVIDERS)
def test_provider_variant_has_the_text_pipelines_shape(provider: str) -> None:
    base = compile_file(PIPELINES / "text.yaml").require_plan()
    plan = compile_file(PIPELINES / f"text-{provider}.yaml").require_plan()
    assert plan.queue.provider == provider
    assert [(r.id, [(a.type, a.step_id) for a in r.adapters]) for r in plan.routes] == [
        (r.id, [(a.type, a.step_id) for a in r.adapters]) for r in base.routes
    ]
    assert [(r.id, len(r.outbound), r.key, r.stateful) for r in plan.routes] == [
        (r.id, len(r.outbound), r.key, r.stateful) for r in base.routes
    ]
    assert len(plan.edges) == len(base.edges) == 1
    assert len(plan.sources) == len(base.sources) == 1
    assert len(plan.sinks) == len(base.sinks) == 3
    queues = [q for r in plan.routes for q in (r.inbound_queue, *(o.queue for o in r.outbound))]
    queues += [d.queue for d in plan.dead_letters]
    assert [q for q in queues if get_provider(provider).queue_name_problem(q)] == []


# The seed system's examples (SEEDS: SEED-SYSTEM.md section 1.5), copied verbatim.

SEED_GENERIC = """\
version: "1.0"
routes:
  my_route:
    name: "Human-readable name"
    description: "What this route does"
    inbound:
      queue: "/queue/my_route.in"
      subscription: "my-route-processors"
      concurrency: 5
      prefetch: 10
    adapters:
      - type: "some_adapter"
        config:
          some_field: 42
      - type: "another_adapter"
init_message:
  route: "my_route"
  payload:
    seed: "hello"
"""

SEED_WEBSCRAPER = """\
version: "1.0"
routes:
  sitemap_scraper:
    name: "Sitemap Web Scraper"
    inbound:
      queue: "/queue/webscraper.sitemap"
      subscription: "sitemap-processors"
      concurrency: 5
      prefetch: 10
    adapters:
      - type: "sitemap_parser"
        config:
          max_urls: 1000
      - type: "url_expander"
      - type: "web_scraper"
        config:
          follow_redirects: true
          timeout: 30
      - type: "web_content_storage"
init_message:
  route: "sitemap_scraper"
  payload:
    sitemap_url: "https://example.com/sitemap.xml"
"""


def _stand_in(type_name: str, properties: dict[str, Any] | None = None) -> type[Adapter]:
    """A stand-in adapter registered in this test only: factflow does not ship these types
    yet; the test checks the seed system's YAML shape compiles once they exist."""

    class StandIn(Adapter):
        name: ClassVar[str] = type_name
        config_schema: ClassVar[dict[str, Any]] = {
            "type": "object",
            "properties": properties or {},
            "additionalProperties": False,
        }

        def process(self, message: Message, context: Context) -> list[Message]:
            return [message]

    StandIn.__qualname__ = f"StandIn_{type_name}"
    return StandIn


def _registry(*adapters: type[Adapter]) -> AdapterRegistry:
    registry = default_registry()
    for cls in adapters:
        registry.register(cls)
    return registry


def test_seed_webscraper_example_compiles_with_stand_ins() -> None:
    registry = _registry(
        _stand_in("sitemap_parser", {"max_urls": {"type": "integer", "minimum": 1}}),
        _stand_in("url_expander"),
        _stand_in(
            "web_scraper",
            {"follow_redirects": {"type": "boolean"}, "timeout": {"type": "number"}},
        ),
        _stand_in("web_content_storage"),
    )
    result = compile_text(SEED_WEBSCRAPER, registry, file="webscraper.yaml")
    assert result.report.issues == (), [i.to_dict() for i in result.report.issues]
    plan = result.require_plan()
    route = plan.route("sitemap_scraper")
    assert [a.step_id for a in route.adapters] == [
        "sitemap_scraper__0_sitemap_parser",
        "sitemap_scraper__1_url_expander",
        "sitemap_scraper__2_web_scraper",
        "sitemap_scraper__3_web_content_storage",
    ]
    assert (route.subscription, route.prefetch, route.concurrency.initial) == (
        "sitemap-processors",
        10,
        5,
    )
    assert route.outbound == ()
    assert plan.init_message is not None
    assert plan.init_message.payload == {"sitemap_url": "https://example.com/sitemap.xml"}
    assert (plan.sources, plan.sinks, plan.edges) == ((), (), ())


def test_seed_webscraper_example_compiles_with_the_shipped_adapters() -> None:
    # factflow.workflows registers the seed system's types; a misspelt one is still E103
    assert compile_text(SEED_WEBSCRAPER).report.issues == ()
    typo = SEED_WEBSCRAPER.replace('"url_expander"', '"url_expandr"')
    assert [i.code for i in compile_text(typo).report.issues] == ["E103"]


def test_seed_generic_example_compiles_with_stand_ins() -> None:
    registry = _registry(
        _stand_in("some_adapter", {"some_field": {"type": "integer"}}),
        _stand_in("another_adapter"),
    )
    result = compile_text(SEED_GENERIC, registry)
    assert result.report.issues == ()
    plan = result.require_plan()
    assert [a.type for a in plan.route("my_route").adapters] == ["some_adapter", "another_adapter"]
    assert plan.route("my_route").inbound_queue == "/queue/my_route.in"
