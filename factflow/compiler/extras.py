"""E407: a pipeline names a provider or storage scheme whose client library is missing.

Caught when the pipeline compiles, so `factflow compile` and the server's validation say
which extra to install instead of a worker failing on its first import.
"""

from __future__ import annotations

from factflow.compiler.loader import PathKey
from factflow.extras import Extra, ModuleProbe, module_installed
from factflow.types import ConfigProblem


def missing_extra_problem(
    path: PathKey, what: str, extra: Extra, probe: ModuleProbe = module_installed
) -> ConfigProblem | None:
    """The E407 problem at `path` when a module of `extra` is not installed, else None."""
    module = extra.missing(probe)
    if module is None:
        return None
    return ConfigProblem(
        path=path,
        code="E407",
        message=f"{what} needs the Python package {module!r}, which is not installed",
        suggestion=f"{extra.install} (or 'factflow[all]')",
    )
