"""One case per validation code: the YAML, the code, and where it points (1-based)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from factflow.compiler.codes import CODES
from factflow.compiler.compile import compile_file, compile_text


@dataclass(frozen=True)
class Case:
    code: str
    yaml: str
    line: int
    column: int
    path: str

    @property
    def text(self) -> str:
        return textwrap.dedent(self.yaml).lstrip("\n")


CASES = [
    Case(
        "E001",
        """
        version: "1.0"
        routes:
          a: b: c
        """,
        3,
        7,
        "",
    ),
    Case(
        "E001",  # a value YAML reads as a date that is not one
        """
        version: "1.0"
        description: 2024-13-01
        routes:
          a:
            inbound: {queue: q}
            outbound: out
        init_message: {route: a}
        """,
        2,
        14,
        "description",
    ),
    Case(
        "E002",  # a second route with the same id: PyYAML would keep only the last
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            outbound: out
          a:
            inbound: {queue: r}
            outbound: out
        init_message: {route: a}
        """,
        6,
        3,
        "routes.a",
    ),
    Case(
        "E003",
        """
        # a list is not a pipeline
        - version: "1.0"
        """,
        2,
        1,
        "",
    ),
    Case("E003", "# only a comment\n", 1, 1, ""),
    Case(
        "E101",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q, concurency: 2}
            outbound: out
        init_message: {route: a}
        """,
        4,
        25,
        "routes.a.inbound.concurency",
    ),
    Case(
        "E102",
        """
        version: "1.0"
        routes:
          a:
            name: A
            outbound: out
        init_message: {route: a}
        """,
        3,
        3,
        "routes.a.inbound",
    ),
    Case(
        "E102",
        """
        routes:
          a:
            inbound: {queue: q}
            outbound: out
        init_message: {route: a}
        """,
        1,
        1,
        "version",
    ),
    Case(
        "E103",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            adapters:
              - type: deduplicat
            outbound: out
        init_message: {route: a}
        """,
        6,
        15,
        "routes.a.adapters[0].type",
    ),
    Case(
        "E104",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q, concurrency: many}
            outbound: out
        init_message: {route: a}
        """,
        4,
        38,
        "routes.a.inbound.concurrency",
    ),
    Case(
        "E105",
        """
        version: "2.0"
        routes:
          a:
            inbound: {queue: q}
            outbound: out
        init_message: {route: a}
        """,
        1,
        10,
        "version",
    ),
    Case(
        "E105",
        """
        version: "1.0"
        error_handling: {backoff: linear}
        routes:
          a:
            inbound: {queue: q}
            outbound: out
        init_message: {route: a}
        """,
        2,
        27,
        "error_handling.backoff",
    ),
    Case(
        "E106",
        """
        version: "1.0"
        routes:
          2nd route:
            inbound: {queue: q}
            outbound: out
        init_message: {route: 2nd route}
        """,
        3,
        3,
        "routes.2nd route",
    ),
    Case(
        "E106",
        """
        version: "1.0"
        name: My Pipeline
        routes:
          a:
            inbound: {queue: q}
            outbound: out
        init_message: {route: a}
        """,
        2,
        7,
        "name",
    ),
    Case(
        "E107",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            adapters:
              - type: "json:JSONDecoder"
            outbound: out
        init_message: {route: a}
        """,
        6,
        15,
        "routes.a.adapters[0].type",
    ),
    Case(
        "E108",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            outbound:
              - queue: en
                condition: {field: lang, operator: in, value: en}
              - queue: all
        init_message: {route: a}
        """,
        7,
        55,
        "routes.a.outbound[0].condition.value",
    ),
    Case(
        "E108",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            adapters:
              - type: passthrough
                condition: {field: lang}
            outbound: out
        init_message: {route: a}
        """,
        7,
        20,
        "routes.a.adapters[0].condition",
    ),
    Case(
        "E110",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            adapters:
              - type: filter
                config: {field: lang, operator: equals, value: en}
            outbound: out
        init_message: {route: a}
        """,
        7,
        41,
        "routes.a.adapters[0].config.operator",
    ),
    Case(
        "E111",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            adapters:
              - type: filter
                config: {field: url, operator: matches, value: "^(https?://"}
            outbound: out
        init_message: {route: a}
        """,
        7,
        56,
        "routes.a.adapters[0].config.value",
    ),
    Case(
        "E112",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            key: metadata..lang
            adapters:
              - type: deduplicate
            outbound: out
        init_message: {route: a}
        """,
        5,
        10,
        "routes.a.key",
    ),
    Case(
        "E113",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            outbound:
              - sink: {type: jsonl_storag}
        init_message: {route: a}
        """,
        6,
        22,
        "routes.a.outbound[0].sink.type",
    ),
    Case(
        "E114",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            outbound:
              - sink: {type: "factflow.messages:Message"}
        init_message: {route: a}
        """,
        6,
        22,
        "routes.a.outbound[0].sink.type",
    ),
    Case(
        "E201",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            outbound: out
        init_message: {route: b}
        """,
        6,
        23,
        "init_message.route",
    ),
    Case(
        "E202",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            outbound: out
          b:
            inbound: {queue: never-written}
            outbound: out
        init_message: {route: a}
        """,
        7,
        22,
        "routes.b.inbound.queue",
    ),
    Case(
        "E203",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: x}
            outbound: y
          b:
            inbound: {queue: y}
            outbound: x
        init_message: {route: a}
        """,
        3,
        3,
        "routes.a",
    ),
    Case(
        "E204",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            outbound: [out, q]
        init_message: {route: a}
        """,
        5,
        21,
        "routes.a.outbound[1].queue",
    ),
    Case(
        "E205",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            outbound: out
          b:
            inbound: {queue: out}
            outbound: done
            error_handling: {dead_letter_queue: q}
        init_message: {route: a}
        """,
        9,
        41,
        "routes.b.error_handling.dead_letter_queue",
    ),
    Case(
        "E206",
        """
        version: "1.0"
        queue: {provider: file, path: ./q}
        routes:
          crawl:
            inbound: {queue: links}
            loop: true
            outbound: links
        init_message: {route: crawl}
        """,
        6,
        11,
        "routes.crawl.loop",
    ),
    Case(
        "E301",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            adapters:
              - type: split
                config: {field: items, as: item}
            outbound: out
        init_message: {route: a}
        """,
        7,
        32,
        "routes.a.adapters[0].config.as",
    ),
    Case(
        "E302",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            adapters:
              - type: split
                config: {into: item}
            outbound: out
        init_message: {route: a}
        """,
        7,
        9,
        "routes.a.adapters[0].config",
    ),
    Case(
        "E302",  # no `config:` at all: points at the adapter
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            adapters:
              - type: map
            outbound: out
        init_message: {route: a}
        """,
        6,
        9,
        "routes.a.adapters[0].config",
    ),
    Case(
        "E303",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            adapters:
              - type: split
                config: {field: items, into: ""}
            outbound: out
        init_message: {route: a}
        """,
        7,
        38,
        "routes.a.adapters[0].config.into",
    ),
    Case(
        "E303",  # a map function that cannot be imported
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            adapters:
              - type: map
                config:
                  function: "json:no_such_function"
            outbound: out
        init_message: {route: a}
        """,
        8,
        21,
        "routes.a.adapters[0].config.function",
    ),
    Case(
        "E401",
        """
        version: "1.0"
        queue: {provider: rabitmq, url: "amqp://127.0.0.1"}
        routes:
          a:
            inbound: {queue: q}
            outbound: out
        """,
        2,
        19,
        "queue.provider",
    ),
    Case(
        "E402",
        """
        version: "1.0"
        queue: {provider: stomp, url: "stomp://127.0.0.1:61613"}
        routes:
          a:
            inbound: {queue: /queue/in}
            outbound: docs.out
        """,
        6,
        15,
        "routes.a.outbound[0].queue",
    ),
    Case(
        "E403",
        """
        version: "1.0"
        storage: {uri: "gs://bucket/prefix"}
        routes:
          a:
            inbound: {queue: q}
            outbound: out
        init_message: {route: a}
        """,
        2,
        16,
        "storage.uri",
    ),
    Case(
        "E404",
        """
        version: "1.0"
        backpressure:
          min_concurrency: 8
          max_concurrency: 4
        routes:
          a:
            inbound: {queue: q}
            outbound: out
        init_message: {route: a}
        """,
        3,
        20,
        "backpressure.min_concurrency",
    ),
    Case(
        "E405",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q, concurrency: 0}
            outbound: out
        init_message: {route: a}
        """,
        4,
        38,
        "routes.a.inbound.concurrency",
    ),
    Case(
        "E406",
        """
        version: "1.0"
        queue: {provider: file}
        routes:
          a:
            inbound: {queue: q}
            outbound: out
        """,
        2,
        8,
        "queue",
    ),
    Case(
        "W501",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            adapters:
              - type: passthrough
              - type: deduplicate
            outbound: out
        init_message: {route: a}
        """,
        7,
        15,
        "routes.a.adapters[1].type",
    ),
    Case(
        "W502",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q, concurrency: 8, prefetch: 2}
            outbound: out
        init_message: {route: a}
        """,
        4,
        51,
        "routes.a.inbound.prefetch",
    ),
    Case(
        "W503",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            outbound:
              - queue: en
                condition: {field: lang, operator: eq, value: en}
        init_message: {route: a}
        """,
        5,
        5,
        "routes.a.outbound",
    ),
    Case(
        "W504",  # in-memory queues and no init message
        """
        version: "1.0"
        queue: {provider: memory}
        routes:
          a:
            inbound: {queue: x}
            outbound: y
        """,
        3,
        1,
        "routes",
    ),
    Case(
        "W505",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            key: metadata.domain
            outbound: out
        init_message: {route: a}
        """,
        5,
        10,
        "routes.a.key",
    ),
    Case(
        "W506",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            adapters:
              - type: passthrough
                store: false
        init_message: {route: a}
        """,
        3,
        3,
        "routes.a",
    ),
    Case(
        "W507",
        """
        version: "1.0"
        queue: {provider: file, path: ./q}
        routes:
          a:
            inbound: {queue: docs}
            outbound: paragraphs
          b:
            inbound: {queue: paragrahps}
            outbound: out
        init_message: {route: a}
        """,
        8,
        22,
        "routes.b.inbound.queue",
    ),
    Case(
        "E115",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            outbound: out
        init_message: {route: a}
        triggers:
          - cron: "* * *"
        """,
        8,
        11,
        "triggers[0].cron",
    ),
    Case(
        "E116",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            outbound: out
        init_message: {route: a}
        triggers:
          - {cron: "0 3 * * *", timezone: Mars/Olympus}
        """,
        8,
        35,
        "triggers[0].timezone",
    ),
    Case(
        "E117",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            outbound: out
        init_message: {route: a}
        triggers:
          - max_running: 1
        """,
        8,
        5,
        "triggers[0]",
    ),
    Case(
        "E207",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            outbound: out
        init_message: {route: a}
        triggers:
          - {event: "x.*", input_queue: out}
        """,
        8,
        33,
        "triggers[0].input_queue",
    ),
    Case(
        "E208",
        """
        version: "1.0"
        routes:
          a:
            inbound: {queue: q}
            outbound: out
        triggers:
          - event: "x.*"
            input_queue: q
            init_payload: true
        """,
        9,
        19,
        "triggers[0].init_payload",
    ),
]


def _id(case: Case) -> str:
    return f"{case.code}-{case.line}:{case.column}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_code_is_reported_at_the_offending_key_or_value(case: Case) -> None:
    result = compile_text(case.text, file="pipeline.yaml")
    found = [i for i in result.report.issues if i.code == case.code]
    assert found, [(i.code, i.message) for i in result.report.issues]
    issue = found[0]
    assert issue.location is not None
    assert (issue.location.file, issue.location.line, issue.location.column) == (
        "pipeline.yaml",
        case.line,
        case.column,
    )
    assert issue.to_dict()["path"] == case.path
    assert issue.severity == ("warning" if case.code.startswith("W") else "error")
    assert issue.message
    assert issue.suggestion


# E004 needs a file, E407 a missing client library: their tests are below and in test_extras.py
NOT_A_CASE = {"E004", "E407"}


def test_every_code_has_a_case() -> None:
    assert {c.code for c in CASES} | NOT_A_CASE == set(CODES)


def test_every_case_reports_its_code_only_once_and_nothing_else_fails() -> None:
    """Each case is a clean example: its own code once, no unrelated errors."""
    for case in CASES:
        report = compile_text(case.text).report
        codes = [i.code for i in report.issues]
        assert codes.count(case.code) == 1, (case.code, codes)
        others = {i.code for i in report.errors} - {case.code}
        assert not others, (case.code, codes)


def test_e004_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    result = compile_file(path)
    assert [i.code for i in result.report.issues] == ["E004"]
    issue = result.report.issues[0]
    assert issue.location is not None
    assert (issue.location.file, issue.location.line, issue.location.column) == (str(path), 1, 1)
    assert "No such file" in issue.message
    assert result.plan is None


def test_e004_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes('version: "1.0"\ndescription: "caf\xe9"\n'.encode("latin-1"))
    result = compile_file(path)
    assert [i.code for i in result.report.issues] == ["E004"]
    assert not result.report.is_valid


def test_e004_directory(tmp_path: Path) -> None:
    result = compile_file(tmp_path)
    assert [i.code for i in result.report.issues] == ["E004"]


# -- warnings, strictness, one pass -------------------------------------------------


def _cases(code: str) -> Case:
    return next(c for c in CASES if c.code == code)


@pytest.mark.parametrize("code", sorted(c for c in CODES if c.startswith("W")))
def test_warnings_never_make_a_pipeline_invalid(code: str) -> None:
    result = compile_text(_cases(code).text)
    assert result.report.is_valid
    assert result.report.errors == []
    assert [i.code for i in result.report.warnings] == [code]
    assert result.plan is not None
    assert result.report.to_dict()["warning_count"] == 1


DOWNGRADABLE = sorted(code for code, c in CODES.items() if c.downgradable)


def test_downgradable_codes_are_the_documented_ones() -> None:
    assert DOWNGRADABLE == ["E203", "E301", "E402", "E404"]


@pytest.mark.parametrize("code", DOWNGRADABLE)
def test_strict_rejects_what_warn_downgrades(code: str) -> None:
    text = _cases(code).text
    strict = compile_text(text, strict=True)
    assert not strict.report.is_valid
    assert strict.plan is None
    assert [i.severity for i in strict.report.issues if i.code == code] == ["error"]

    warn = compile_text(text, strict=False)
    assert warn.report.is_valid
    assert [i.severity for i in warn.report.issues if i.code == code] == ["warning"]
    assert warn.plan is not None


@pytest.mark.parametrize("value", ["0", "false", "no", "off", "OFF"])
def test_env_switches_to_warn_only(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("FACTFLOW_CONFIG_VALIDATOR_STRICT", value)
    result = compile_text(_cases("E301").text)
    assert result.report.is_valid
    assert result.plan is not None
    assert result.plan.route("a").adapters[0].config == {"field": "items", "as": "item"}


@pytest.mark.parametrize("value", ["1", "true", "yes", ""])
def test_env_keeps_strict(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("FACTFLOW_CONFIG_VALIDATOR_STRICT", value)
    assert not compile_text(_cases("E301").text).report.is_valid


def test_explicit_strict_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACTFLOW_CONFIG_VALIDATOR_STRICT", "0")
    assert not compile_text(_cases("E402").text, strict=True).report.is_valid


@pytest.mark.parametrize(
    "code",
    sorted(c for c in CODES if c[0] == "E" and c not in NOT_A_CASE and not CODES[c].downgradable),
)
def test_warn_keeps_other_errors_errors(code: str) -> None:
    result = compile_text(_cases(code).text, strict=False)
    assert not result.report.is_valid
    assert result.plan is None
    assert code in {i.code for i in result.report.errors}


MANY_PROBLEMS = """\
version: "1.0"
queue: {provider: stomp, url: "stomp://127.0.0.1:61613"}
routes:
  crawl:
    inbound: {queue: /queue/urls, concurrency: 4, prefetch: 1}
    adapters:
      - type: web_scrapr
      - type: split
        config: {field: items, size: 3}
      - type: filter
        config: {field: lang, operator: like, value: en}
    outbound: [pages, /queue/urls]
init_message: {route: crwal}
"""


def test_all_issues_in_one_pass() -> None:
    report = compile_text(MANY_PROBLEMS).report
    got = [(i.code, i.location.line, i.location.column) for i in report.issues if i.location]
    assert got == [
        ("E103", 7, 15),
        ("E301", 9, 32),
        ("E110", 11, 41),
        ("E402", 12, 16),
        ("E204", 12, 23),
        ("E201", 13, 23),
        ("W502", 5, 61),
    ]
    assert report.to_dict()["error_count"] == 6
    assert report.to_dict()["warning_count"] == 1


def test_structure_errors_do_not_hide_adapter_and_setting_errors() -> None:
    text = """\
version: "1.0"
name: Bad Name
queue: {provider: kafak}
routes:
  a:
    inbound: {queue: q, concurency: 2}
    adapters:
      - type: filtr
    outbound: out
init_message: {route: a}
"""
    codes = [i.code for i in compile_text(text).report.issues]
    assert codes == ["E106", "E401", "E101", "E103"]


def test_errors_come_before_warnings_each_in_file_order() -> None:
    report = compile_text(MANY_PROBLEMS).report
    severities = [i.severity for i in report.issues]
    assert severities == sorted(severities, key=lambda s: s != "error")
    lines = [i.location.line for i in report.errors if i.location]
    assert lines == sorted(lines)


def test_unknown_keys_do_not_hide_reference_errors() -> None:
    text = """\
version: "1.0"
retries: 3
routes:
  ingest:
    inbound: {queue: docs.in, concurency: 4}
    concurrency: 2
    adapters:
      - type: passthrough
        condition: {field: lang, operatr: eq, value: en}
    outbound: paragraphs
  dedupe:
    inbound: {queue: paragraphs}
    outbound: out
init_message: {route: ingst}
"""
    issues = {(i.code, i.to_dict()["path"]): i for i in compile_text(text).report.issues}
    hints = {path: issue.suggestion.split("?")[0] for (code, path), issue in issues.items()}
    assert set(issues) >= {
        ("E101", "retries"),
        ("E101", "routes.ingest.inbound.concurency"),
        ("E101", "routes.ingest.concurrency"),
        ("E101", "routes.ingest.adapters[0].condition.operatr"),
        ("E201", "init_message.route"),
    }
    assert hints["retries"] == "did you mean 'error_handling.max_retries'"
    assert hints["routes.ingest.inbound.concurency"] == "did you mean 'concurrency'"
    assert hints["routes.ingest.concurrency"] == "did you mean 'inbound.concurrency'"
    assert hints["routes.ingest.adapters[0].condition.operatr"] == "did you mean 'operator'"
    assert hints["init_message.route"] == "did you mean 'ingest'"
    e201 = issues[("E201", "init_message.route")]
    assert e201.location is not None and (e201.location.line, e201.location.column) == (14, 23)


def test_a_repaired_typo_is_read_as_meant() -> None:
    """`outbnd:` read as `outbound:` for the reference checks: no E202 on the next route."""
    text = """\
version: "1.0"
routes:
  a:
    inbound: {queue: q}
    outbnd: mid
  b:
    inbound: {queue: mid}
    outbound: out
init_message: {route: nope}
"""
    codes = [i.code for i in compile_text(text).report.issues]
    assert codes == ["E101", "E201"]


def test_broken_required_parts_skip_the_reference_checks() -> None:
    """A route without `inbound:` cannot be modelled: only what the first passes found."""
    text = """\
version: "1.0"
routes:
  a:
    inbond: {queue: q}
    outbound: out
init_message: {route: nope}
"""
    codes = [(i.code, i.to_dict()["path"]) for i in compile_text(text).report.issues]
    assert codes == [("E102", "routes.a.inbound"), ("E101", "routes.a.inbond")]


def test_wrong_optional_value_does_not_hide_reference_errors() -> None:
    text = """\
version: "1.0"
routes:
  a:
    inbound: {queue: q, concurrency: many}
    outbound: out
init_message: {route: nope}
"""
    codes = [i.code for i in compile_text(text).report.issues]
    assert codes == ["E104", "E201"]


def test_e202_says_which_written_queue_was_meant() -> None:
    text = """\
version: "1.0"
routes:
  a:
    inbound: {queue: docs}
    outbound: paragraphs
  b:
    inbound: {queue: paragrahps}
    outbound: out
init_message: {route: a}
"""
    [issue] = [i for i in compile_text(text).report.issues if i.code == "E202"]
    assert issue.suggestion.startswith("did you mean 'paragraphs' (written by route 'a')?")
    assert "W507" not in {i.code for i in compile_text(text).report.issues}


@pytest.mark.parametrize(
    ("read", "written"), [("docs.in", "docs.out"), ("events.raw", "events.new")]
)
def test_w507_leaves_different_names_alone(read: str, written: str) -> None:
    text = f"""\
version: "1.0"
queue: {{provider: file, path: ./q}}
routes:
  a:
    inbound: {{queue: {read}}}
    outbound: {written}
init_message: {{route: a}}
"""
    assert compile_text(text).report.issues == ()
