"""Type aliases shared across factflow."""

from typing import Any, TypeAlias

JsonDict: TypeAlias = dict[str, Any]
JsonSchema: TypeAlias = dict[str, Any]
