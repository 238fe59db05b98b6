"""docs/errors.md and the compiler's CODES agree, and every example does what it says."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from factflow.compiler.codes import CODES
from factflow.compiler.compile import compile_text

DOCS = Path(__file__).resolve().parents[3] / "docs" / "errors.md"
HEADING = re.compile(r"^## ([EW]\d{3}) — (.+)$")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
NOT_YAML = {"E004"}  # an unreadable file has no YAML to show
# reported only where a client library is missing, and the tests install every extra:
# the example shows the report (tests/unit/compiler/test_extras.py makes it happen)
SHOWN_AS_REPORT = {"E407"}


@dataclass(frozen=True)
class Section:
    code: str
    title: str
    body: str

    @property
    def first_block(self) -> tuple[str, str]:
        match = FENCE.search(self.body)
        assert match, f"{self.code}: no fenced example"
        return match.group(1), match.group(2)

    @property
    def starts_with_a_block(self) -> bool:
        """The example comes right after the heading's paragraph: no other heading first."""
        return "\n## " not in self.body.split("```", 1)[0]


def sections() -> list[Section]:
    text = DOCS.read_text(encoding="utf-8")
    parts = re.split(r"^(?=## )", text, flags=re.MULTILINE)
    found = []
    for part in parts:
        first, _, body = part.partition("\n")
        if match := HEADING.match(first):
            found.append(Section(match.group(1), match.group(2), body))
    return found


SECTIONS = sections()


def test_docs_and_codes_list_the_same_codes() -> None:
    documented = [s.code for s in SECTIONS]
    assert len(documented) == len(set(documented)), "a code is documented twice"
    missing = sorted(set(CODES) - set(documented))
    extra = sorted(set(documented) - set(CODES))
    assert not missing, f"codes without a docs entry: {missing}"
    assert not extra, f"documented codes the compiler does not have: {extra}"


def test_docs_list_codes_in_order() -> None:
    assert [s.code for s in SECTIONS] == sorted(CODES)


def test_every_heading_has_its_title_and_anchor() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert section.title == CODES[section.code].title, section.code
        # Issue.docs links to docs/errors.md#e103: an explicit anchor keeps that link working
        assert f'<a id="{section.code.lower()}"></a>\n## {section.code} — ' in text


def test_docs_name_the_downgradable_codes() -> None:
    text = DOCS.read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.startswith("Downgradable codes:"))
    assert re.findall(r"[EW]\d{3}", line) == sorted(c for c, v in CODES.items() if v.downgradable)
    for section in SECTIONS:
        says = "Downgradable" in section.body
        assert says == CODES[section.code].downgradable, section.code


def test_docs_name_the_ranges_and_fields() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for needle in ["E001-E099", "E1xx", "E2xx", "E3xx", "E4xx", "W5xx"]:
        assert needle in text
    for field in ["severity", "code", "path", "message", "suggestion", "file", "line", "column"]:
        assert f"`{field}`" in text
    assert "FACTFLOW_CONFIG_VALIDATOR_STRICT=0" in text
    assert "--validation warn" in text


@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s.code)
def test_each_example_reports_its_code_on_the_marked_line(section: Section) -> None:
    assert section.starts_with_a_block
    assert "**Fix:**" in section.body, f"{section.code}: no fix"
    language, block = section.first_block
    if section.code in NOT_YAML | SHOWN_AS_REPORT:
        assert language == "text"
        assert f"error {section.code}" in block
        return
    assert language == "yaml", f"{section.code}: the example must be a ```yaml block"
    marked = [n for n, line in enumerate(block.splitlines(), 1) if f"# <- {section.code}" in line]
    assert len(marked) == 1, f"{section.code}: mark the offending line with '# <- {section.code}'"

    report = compile_text(block, file="example.yaml").report
    codes = [i.code for i in report.issues]
    assert codes.count(section.code) == 1, (section.code, codes)
    issue = next(i for i in report.issues if i.code == section.code)
    assert issue.location is not None
    assert issue.location.line == marked[0], (section.code, issue.to_dict())
    # a clean example: no other errors, and warnings only when the section is one
    assert {i.code for i in report.errors} - {section.code} == set()
    if section.code.startswith("W"):
        assert report.is_valid
        assert codes == [section.code]
