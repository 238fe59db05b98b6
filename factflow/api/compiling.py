"""Pipeline YAML -> the compiler's report and plan, as the configs and executions APIs use it."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from factflow.adapters.registry import AdapterRegistry
from factflow.api.errors import ApiError, invalid_config
from factflow.compiler.compile import CompileResult, compile_text
from factflow.compiler.loader import parse_yaml
from factflow.compiler.plan import Plan
from factflow.types import JsonDict

PARSE_ERROR_PREFIX = "E0"  # E001-E099: the YAML itself cannot be read


@dataclass(frozen=True)
class Compiled:
    result: CompileResult

    @property
    def report(self) -> JsonDict:
        return self.result.report.to_dict()

    @property
    def is_runnable(self) -> bool:
        return self.result.plan is not None

    @property
    def unparsable(self) -> bool:
        return any(
            i.code.startswith(PARSE_ERROR_PREFIX) and i.severity == "error"
            for i in self.result.report.issues
        )

    def require_parsable(self) -> None:
        """400 with the report when the text is not a YAML mapping (nothing is stored)."""
        if self.unparsable:
            raise invalid_config(self.report, "the config YAML cannot be parsed")

    def require_plan(self) -> Plan:
        """The plan, or 400 with the report (`CONFIG_INVALID`): invalid configs cannot run."""
        if self.result.plan is None:
            raise invalid_config(self.report)
        return self.result.plan


def compile_yaml(text: str, registry: AdapterRegistry, *, name: str = "pipeline") -> Compiled:
    return Compiled(compile_text(text, registry, file=name))


def pipeline_name(text: str, default: str = "inline") -> str:
    """The YAML's `name:` (inline pipelines have no config name)."""
    try:
        data = parse_yaml(text)
    except (yaml.YAMLError, RecursionError):
        # nested too deep: the compiler reports it (E001), this only names the run
        return default
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else default


def bad_request(detail: str, code: str = "BAD_REQUEST") -> ApiError:
    return ApiError(400, detail, code)
