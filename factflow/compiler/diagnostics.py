"""Validation issues and the report that collects them (the seed system's shape plus
factflow's `file`, `line`, `column`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from factflow.compiler.codes import CODES

Severity = Literal["error", "warning"]
DOCS_URL = "docs/errors.md"


@dataclass(frozen=True, slots=True)
class Location:
    file: str
    line: int
    column: int


def format_path(path: tuple[str | int, ...]) -> str:
    """`('routes', 'crawl', 'adapters', 1, 'config')` -> `routes.crawl.adapters[1].config`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


@dataclass(frozen=True, slots=True)
class Issue:
    severity: Severity
    code: str
    path: tuple[str | int, ...]
    message: str
    suggestion: str
    location: Location | None = None

    @classmethod
    def error(
        cls,
        code: str,
        path: tuple[str | int, ...],
        message: str,
        suggestion: str,
        location: Location | None = None,
    ) -> Issue:
        if code not in CODES:
            msg = f"unregistered validation code {code}"
            raise KeyError(msg)
        severity: Severity = "warning" if code.startswith("W") else "error"
        return cls(severity, code, path, message, suggestion, location)

    def downgraded(self) -> Issue:
        return replace(self, severity="warning")

    @property
    def docs(self) -> str:
        return f"{DOCS_URL}#{self.code.lower()}"

    def to_dict(self) -> dict[str, Any]:
        loc = self.location
        return {
            "severity": self.severity,
            "code": self.code,
            "path": format_path(self.path),
            "message": self.message,
            "suggestion": self.suggestion,
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
        }


@dataclass(frozen=True)
class ValidationReport:
    issues: tuple[Issue, ...]

    @classmethod
    def of(cls, issues: list[Issue], *, strict: bool = True) -> ValidationReport:
        if not strict:
            issues = [
                i.downgraded() if i.severity == "error" and CODES[i.code].downgradable else i
                for i in issues
            ]
        # errors first, then warnings, each in file order
        ordered = sorted(
            issues,
            key=lambda i: (
                i.severity != "error",
                i.location.line if i.location else 0,
                i.location.column if i.location else 0,
            ),
        )
        return cls(tuple(ordered))

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def is_valid(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "is_valid": self.is_valid,
            "error_count": len(self.errors),
            "warning_count": len(self.warnings),
            "issues": [i.to_dict() for i in self.issues],
        }
