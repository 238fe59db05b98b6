"""One call from YAML to a report and, when the pipeline is valid, its plan."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from factflow.adapters.registry import AdapterRegistry, default_registry
from factflow.compiler.diagnostics import ValidationReport
from factflow.compiler.loader import LoadedYaml, load_file, load_text
from factflow.compiler.overrides import Overrides
from factflow.compiler.plan import Plan, build_plan
from factflow.compiler.validate import validate
from factflow.exceptions import ConfigurationError
from factflow.messages import content_hash


@dataclass(frozen=True)
class CompileResult:
    loaded: LoadedYaml
    report: ValidationReport
    plan: Plan | None

    def require_plan(self) -> Plan:
        """The plan, or ConfigurationError carrying the report's errors."""
        if self.plan is None:
            first = self.report.errors[0] if self.report.errors else None
            detail = f": {first.code} {first.message}" if first else ""
            count = len(self.report.errors)
            msg = f"{self.loaded.file} is not a valid pipeline ({count} error(s)){detail}"
            raise ConfigurationError(msg)
        return self.plan


def compile_loaded(
    loaded: LoadedYaml,
    registry: AdapterRegistry | None = None,
    *,
    strict: bool | None = None,
    overrides: Overrides | None = None,
    name: str | None = None,
) -> CompileResult:
    """Validate and plan `loaded`; `overrides` (a launcher's placement) are applied to its
    data first. The config hash is always of the YAML as written."""
    registry = registry or default_registry()
    config_hash = content_hash(loaded.data)
    target = loaded if overrides is None else replace(loaded, data=overrides.apply(loaded.data))
    validation = validate(target, registry, strict=strict)
    plan = None
    if validation.report.is_valid and validation.config is not None:
        default = Path(loaded.file).stem if loaded.file != "<string>" else "pipeline"
        plan = build_plan(
            validation.config, registry, name=name or default, config_hash=config_hash
        )
    return CompileResult(loaded, validation.report, plan)


def compile_file(
    path: str | Path,
    registry: AdapterRegistry | None = None,
    *,
    strict: bool | None = None,
    overrides: Overrides | None = None,
) -> CompileResult:
    return compile_loaded(load_file(path), registry, strict=strict, overrides=overrides)


def compile_text(
    text: str,
    registry: AdapterRegistry | None = None,
    *,
    strict: bool | None = None,
    file: str = "<string>",
    overrides: Overrides | None = None,
    name: str | None = None,
) -> CompileResult:
    return compile_loaded(
        load_text(text, file), registry, strict=strict, overrides=overrides, name=name
    )
