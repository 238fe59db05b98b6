"""Types shared across factflow: JSON aliases and the config problem checks report."""

from dataclasses import dataclass
from typing import Any, TypeAlias

JsonDict: TypeAlias = dict[str, Any]
JsonSchema: TypeAlias = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """A problem a check found beyond what a JSON Schema can say (`Adapter.check_config`,
    the condition checks), reported by the compiler at `path` with `code`."""

    path: tuple[str | int, ...]
    code: str
    message: str
    suggestion: str
