"""The compiler's validation report as the API returns it (`POST /configs/validate`, a
config's `validation_report`, and the body of a 400 `CONFIG_INVALID`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class ValidationIssue(BaseModel):
    severity: Literal["error", "warning"]
    code: str
    path: str
    message: str
    suggestion: str | None = None
    file: str | None = None
    line: int | None = None
    column: int | None = None


class ValidationReport(BaseModel):
    is_valid: bool
    error_count: int
    warning_count: int
    issues: list[ValidationIssue]
