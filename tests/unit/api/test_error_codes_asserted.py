"""The API's error codes: the ones the server can answer (found in its source), the ones
docs/api.md and docs/auth.md document, and the ones some test asserts agree.

A code is produced where the source names it: the error table of factflow/api/errors.py
(`_MAPPING` and its handlers' `_response(...)`), an `ApiError(status, detail, "CODE")`,
a `bad_request(detail, "CODE")`, an `error_body(detail, code)` whose `code` is assigned
from literals, and every `AuthCode`. A few are made at run time and are listed below with
where they come from. A code counts as asserted when a test module other than this one
names it as a string (or as `AuthCode.CODE`) and checks codes (`error_code` or `.code`).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from factflow.auth.exceptions import AuthCode

ROOT = Path(__file__).resolve().parents[3]
SOURCE = ROOT / "factflow"
TESTS = ROOT / "tests"

# made at run time, not written out in the source
RUN_TIME = {
    # routers/triggers.py: bad_request(msg, f"{kind.upper()}_INVALID")
    "TRIGGER_INVALID": "triggers",
    "SCHEDULE_INVALID": "triggers",
    # errors.py _code_for_status: an HTTPException's status name (Starlette's router)
    "NOT_FOUND": "an unknown path",
    "METHOD_NOT_ALLOWED": "a known path, another method",
    "HTTP_ERROR": "a status without a name",
}
_CODE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$|^CONFLICT$")


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _literal(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _codes_in(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    # (call name, index of the code argument)
    positions = {"ApiError": 2, "bad_request": 1, "_response": 2, "error_body": 1}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (name := _call_name(node)) in positions:
            index = positions[name]
            if len(node.args) > index and (code := _literal(node.args[index])):
                found.add(code)
            elif name == "bad_request" and len(node.args) == 1:
                found.add("BAD_REQUEST")  # its default
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "code" for t in node.targets
        ):
            found |= {
                value
                for sub in ast.walk(node.value)
                if (value := _literal(sub) if isinstance(sub, ast.expr) else None)
            }
        elif (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "_MAPPING"
            and node.value is not None
        ):
            for entry in ast.walk(node.value):
                if isinstance(entry, ast.Tuple) and len(entry.elts) == 3:
                    code = _literal(entry.elts[2])
                    if code is not None:
                        found.add(code)
    return {code for code in found if _CODE.match(code)}


def produced() -> set[str]:
    codes = {code.value for code in AuthCode} | set(RUN_TIME)
    for path in SOURCE.rglob("*.py"):
        codes |= _codes_in(ast.parse(path.read_text(encoding="utf-8")))
    return codes


def _section(path: Path, heading: str) -> str:
    text = path.read_text(encoding="utf-8")
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def documented() -> set[str]:
    sections = _section(ROOT / "docs/api.md", "Error codes") + _section(
        ROOT / "docs/auth.md", "Errors"
    )
    return {code for code in re.findall(r"`([A-Z][A-Z0-9_]+)`", sections) if _CODE.match(code)}


def asserted() -> dict[str, list[str]]:
    """Each code named by test modules that check codes, with those modules."""
    named: dict[str, list[str]] = {}
    here = Path(__file__).resolve()
    for path in TESTS.rglob("*.py"):
        if path.resolve() == here:
            continue
        text = path.read_text(encoding="utf-8")
        if "error_code" not in text and ".code" not in text:
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                code = node.value
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "AuthCode"
            ):
                code = node.attr
            else:
                continue
            if _CODE.match(code):
                named.setdefault(code, []).append(str(path.relative_to(ROOT)))
    return named


def test_the_scan_finds_the_codes_of_each_kind_of_source() -> None:
    # one of each: the mapping table, a handler, an ApiError, bad_request's default and
    # an explicit one, a code assigned from literals, an AuthCode
    assert {
        "DATABASE_ERROR", "STORAGE_IN_USE", "ARCHIVE_NOT_READY", "BAD_REQUEST",
        "WEBHOOK_INVALID", "CHAT_FAILED", "RATE_LIMITED",
    } <= produced()  # fmt: skip
    assert {"CONFIG_INVALID", "SESSION_EXPIRED", "KEY_EXECUTION_LIMIT"} <= documented()


def test_every_code_the_server_can_answer_is_documented() -> None:
    assert produced() - documented() == set()


def test_every_documented_code_can_be_answered() -> None:
    assert documented() - produced() == set()


def test_every_documented_code_is_asserted_by_a_test() -> None:
    assert documented() - set(asserted()) == set()
