"""The adapter registry: built-ins, register(), dotted paths, entry points, rejections."""

from __future__ import annotations

from pathlib import Path

import pytest

from factflow.adapters.builtin import BUILTIN_ADAPTERS
from factflow.adapters.registry import (
    ENTRY_POINT_GROUP,
    AdapterRegistry,
    UnknownAdapterError,
    check_adapter_class,
    default_registry,
)
from factflow.compiler.compile import compile_text
from factflow.exceptions import AdapterRegistrationError, ConfigurationError

from . import sample_adapters
from .sample_adapters import BadSchemaAdapter, GoodAdapter, NamelessAdapter, StatefulAdapter

MODULE = sample_adapters.__name__


def test_default_registry_holds_the_builtins() -> None:
    names = default_registry().names()
    for expected in ["deduplicate", "filter", "map", "passthrough", "set_metadata", "split"]:
        assert expected in names
    assert names == sorted(names)
    assert {cls.name for cls in BUILTIN_ADAPTERS} <= set(names)


def test_builtins_have_valid_schemas_and_names() -> None:
    for cls in BUILTIN_ADAPTERS:
        assert check_adapter_class(cls, cls.__name__) is cls
    assert [c.name for c in BUILTIN_ADAPTERS if c.stateful] == ["deduplicate"]


def test_register_by_class_name_and_explicit_name() -> None:
    registry = AdapterRegistry()
    assert registry.register(GoodAdapter) is GoodAdapter
    registry.register(GoodAdapter, name="hello")
    assert registry.resolve("good") is GoodAdapter
    assert registry.resolve("hello") is GoodAdapter
    assert {"good", "hello"} <= set(registry.names())


def test_register_works_as_a_decorator() -> None:
    registry = AdapterRegistry()

    @registry.register
    class Local(GoodAdapter):
        name = "local"

    assert registry.resolve("local") is Local


def test_unknown_name_suggests_close_ones() -> None:
    with pytest.raises(UnknownAdapterError) as info:
        default_registry().resolve("deduplicat")
    assert info.value.suggestions[0] == "deduplicate"
    assert "did you mean 'deduplicate'?" in str(info.value)
    assert isinstance(info.value, ConfigurationError)
    with pytest.raises(UnknownAdapterError) as far:
        default_registry().resolve("zzzzzz")
    assert far.value.suggestions == []


def test_dotted_path_resolves_without_registering() -> None:
    registry = default_registry()
    assert registry.resolve(f"{MODULE}:GoodAdapter") is GoodAdapter
    assert "good" not in registry.names()


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (NamelessAdapter, "has no `name`"),
        (sample_adapters.BlankNameAdapter, "has no `name`"),
        (BadSchemaAdapter, "invalid config_schema"),
        (sample_adapters.ListSchemaAdapter, "invalid config_schema"),
        (sample_adapters.NotAnAdapter, "is not a subclass of factflow.Adapter"),
    ],
)
def test_register_rejects_unusable_classes_clearly(cls: type, message: str) -> None:
    with pytest.raises(AdapterRegistrationError, match=message):
        AdapterRegistry().register(cls)


@pytest.mark.parametrize(
    ("type_name", "message"),
    [
        (f"{MODULE}:NamelessAdapter", "has no `name`"),
        (f"{MODULE}:BadSchemaAdapter", "invalid config_schema: 'no-such-type' is not valid"),
        (f"{MODULE}:NotAnAdapter", "is not a subclass of factflow.Adapter"),
        (f"{MODULE}:shout", "is not a subclass of factflow.Adapter"),
        (f"{MODULE}:Missing", "has no attribute 'Missing'"),
        ("no_such_module_xyz:Thing", "cannot import module 'no_such_module_xyz'"),
        (":Thing", "is not a dotted path"),
        (".relative:Thing", "is not a dotted path"),
        ("pkg:", "is not a dotted path"),
    ],
)
def test_dotted_paths_that_cannot_be_used(type_name: str, message: str) -> None:
    with pytest.raises(AdapterRegistrationError, match=message):
        default_registry().resolve(type_name)


def _pipeline(type_name: str, config: str = "") -> str:
    lines = [
        'version: "1.0"',
        "routes:",
        "  a:",
        "    inbound: {queue: q}",
        "    adapters:",
        f'      - type: "{type_name}"',
        *([f"        config: {config}"] if config else []),
        "    outbound: out",
        "init_message: {route: a}",
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "attr", ["NamelessAdapter", "BadSchemaAdapter", "NotAnAdapter", "Missing", "ListSchemaAdapter"]
)
def test_unusable_class_from_yaml_is_e107(attr: str) -> None:
    result = compile_text(_pipeline(f"{MODULE}:{attr}"), file="p.yaml")
    [issue] = result.report.issues
    assert issue.code == "E107"
    assert issue.to_dict()["path"] == "routes.a.adapters[0].type"
    assert issue.location is not None
    assert (issue.location.line, issue.location.column) == (6, 15)
    assert result.plan is None


def test_dotted_path_from_yaml_compiles_and_checks_config() -> None:
    good = compile_text(_pipeline(f"{MODULE}:GoodAdapter", "{greeting: hi}"))
    assert good.report.issues == ()
    assert good.plan is not None
    step = good.plan.route("a").adapters[0]
    assert step.type == f"{MODULE}:GoodAdapter"
    assert step.stage == "GoodAdapter"
    missing = compile_text(_pipeline(f"{MODULE}:GoodAdapter"))
    assert [i.code for i in missing.report.issues] == ["E302"]


def test_registered_adapter_from_yaml_with_a_custom_registry() -> None:
    registry = default_registry()
    registry.register(GoodAdapter)
    registry.register(StatefulAdapter)
    result = compile_text(_pipeline("good", "{greeting: hi, loud: true}"), registry)
    assert [i.code for i in result.report.issues] == ["E301"]
    assert "did you mean" not in result.report.issues[0].suggestion
    assert "fields of 'good': greeting" in result.report.issues[0].suggestion
    stateful = compile_text(_pipeline("counter"), registry)
    assert stateful.plan is not None
    assert stateful.plan.route("a").stateful is True
    assert [i.code for i in stateful.report.issues] == ["W501"]
    # the default registry does not know them
    assert [i.code for i in compile_text(_pipeline("good")).report.issues] == ["E103"]


def test_e103_lists_known_types_and_did_you_mean() -> None:
    [issue] = compile_text(_pipeline("passthru")).report.issues
    assert issue.code == "E103"
    assert issue.suggestion.startswith("did you mean 'passthrough'?")
    assert "deduplicate" in issue.suggestion


def _fake_distribution(root: Path, entry_points: str) -> None:
    dist = root / "fake_factflow_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fake-factflow-plugin\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_points}")


def test_entry_point_group_is_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_distribution(tmp_path, f"greeter = {MODULE}:GoodAdapter\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = default_registry()
    assert registry.resolve("greeter") is GoodAdapter
    assert "greeter" in registry.names()
    result = compile_text(_pipeline("greeter", "{greeting: hi}"), registry)
    assert result.plan is not None


def test_entry_point_does_not_replace_a_registered_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_distribution(tmp_path, f"filter = {MODULE}:GoodAdapter\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert default_registry().resolve("filter").__name__ == "FilterAdapter"


def test_broken_entry_point_is_a_registration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_distribution(tmp_path, f"nameless = {MODULE}:NamelessAdapter\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(AdapterRegistrationError, match="entry point 'nameless'"):
        default_registry().resolve("nameless")
