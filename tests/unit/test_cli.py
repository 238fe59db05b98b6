"""`factflow compile` and `factflow config validate`: outputs and exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factflow.cli import app
from factflow.cli.run import where_things_went
from factflow.compiler.compile import compile_text
from factflow.compiler.plan import Plan
from factflow.settings import Settings

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
TEXT = PIPELINES / "text.yaml"

BAD = """\
version: "1.0"
routes:
  convert:
    inbound: {queue: pages}
    adapters:
      - type: passthrough
      - type: deduplicat
        config: {key: url}
    outbound: docs
init_message: {route: convert}
"""

DOWNGRADABLE = """\
version: "1.0"
routes:
  a:
    inbound: {queue: q}
    adapters:
      - type: split
        config: {field: items, as: item}
    outbound: out
init_message: {route: a}
"""

runner = CliRunner()


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD, encoding="utf-8")
    return path


@pytest.fixture
def downgradable(tmp_path: Path) -> Path:
    path = tmp_path / "warn.yaml"
    path.write_text(DOWNGRADABLE, encoding="utf-8")
    return path


def test_compile_valid_prints_the_plan() -> None:
    result = runner.invoke(app, ["compile", str(TEXT)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("pipeline text (version 1.0, queue provider file)")
    assert "step dedupe__0_deduplicate  (stateful)" in result.stdout
    assert "paragraphs: ingest -> dedupe" in result.stdout
    assert result.stderr == ""


def test_compile_invalid_text_report(bad: Path) -> None:
    result = runner.invoke(app, ["compile", str(bad)])
    assert result.exit_code == 1
    assert result.stdout == ""
    err = result.stderr
    assert (
        f"{bad}:7:15: error E103 unknown adapter type 'deduplicat' "
        "(did you mean 'deduplicate'?)" in err
    )
    # numbered lines around the problem, `>` on the offending one, a caret under the column
    assert re.search(r"^    5 \|     adapters:$", err, re.MULTILINE)
    assert re.search(r"^  > 7 \|       - type: deduplicat$", err, re.MULTILINE)
    assert re.search(r"^      \| {15}\^$", err, re.MULTILINE)  # under column 15
    assert re.search(r"^    9 \|     outbound: docs$", err, re.MULTILINE)
    assert "    at: routes.convert.adapters[1].type" in err
    assert "    fix: did you mean 'deduplicate'?" in err
    assert err.rstrip().endswith(f"{bad}: invalid, 1 error(s), 0 warning(s)")


def test_compile_json_invalid(bad: Path) -> None:
    result = runner.invoke(app, ["compile", str(bad), "--output", "json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert set(data) == {"is_valid", "error_count", "warning_count", "issues", "plan"}
    assert (data["is_valid"], data["error_count"], data["warning_count"]) == (False, 1, 0)
    assert data["plan"] is None
    [issue] = data["issues"]
    assert issue == {
        "severity": "error",
        "code": "E103",
        "path": "routes.convert.adapters[1].type",
        "message": "unknown adapter type 'deduplicat' (did you mean 'deduplicate'?)",
        "suggestion": issue["suggestion"],
        "file": str(bad),
        "line": 7,
        "column": 15,
    }
    assert issue["suggestion"].startswith("did you mean 'deduplicate'?")


def test_compile_json_valid_has_the_plan() -> None:
    result = runner.invoke(app, ["compile", str(TEXT), "-o", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["is_valid"], data["error_count"], data["issues"]) == (True, 0, [])
    plan = data["plan"]
    assert {
        "pipeline",
        "routes",
        "edges",
        "sources",
        "sinks",
        "init_message",
        "dead_letters",
    } <= set(plan)
    assert plan["edges"] == [{"queue": "paragraphs", "from": "ingest", "to": "dedupe"}]
    assert plan["sources"][0]["queue"] == "docs.in"
    assert [r["id"] for r in plan["routes"]] == ["ingest", "dedupe"]


def test_compile_mermaid() -> None:
    result = runner.invoke(app, ["compile", str(TEXT), "-o", "mermaid"])
    assert result.exit_code == 0
    assert result.stdout.startswith("flowchart")
    assert "r_dedupe" in result.stdout
    assert "init --> r_ingest" in result.stdout


def test_compile_unreadable_file_is_exit_1(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    result = runner.invoke(app, ["compile", str(missing), "-o", "json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert [i["code"] for i in data["issues"]] == ["E004"]
    text = runner.invoke(app, ["compile", str(missing)])
    assert text.exit_code == 1
    assert f"{missing}:1:1: error E004 cannot read" in text.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["compile"],
        ["compile", str(TEXT), "--output", "yaml"],
        ["compile", str(TEXT), "--validation", "lenient"],
        ["compile", str(TEXT), "--no-such-option"],
        ["config", "validate"],
        ["no-such-command"],
    ],
)
def test_usage_errors_are_exit_2(args: list[str]) -> None:
    assert runner.invoke(app, args).exit_code == 2


def test_validation_warn_downgrades(downgradable: Path) -> None:
    strict = runner.invoke(app, ["compile", str(downgradable), "-o", "json"])
    assert strict.exit_code == 1
    warn = runner.invoke(app, ["compile", str(downgradable), "-o", "json", "--validation", "warn"])
    assert warn.exit_code == 0
    data = json.loads(warn.stdout)
    assert (data["is_valid"], data["error_count"], data["warning_count"]) == (True, 0, 1)
    assert data["issues"][0]["severity"] == "warning"
    assert data["plan"] is not None


def test_env_downgrades_and_flag_overrides(downgradable: Path) -> None:
    env = {"FACTFLOW_CONFIG_VALIDATOR_STRICT": "0"}
    assert runner.invoke(app, ["compile", str(downgradable)], env=env).exit_code == 0
    result = runner.invoke(app, ["compile", str(downgradable), "--validation", "strict"], env=env)
    assert result.exit_code == 1


def test_warnings_go_to_stderr_and_keep_exit_0(downgradable: Path) -> None:
    result = runner.invoke(app, ["compile", str(downgradable), "--validation", "warn"])
    assert result.exit_code == 0
    assert ":7:32: warning E301 unknown config field 'as'" in result.stderr
    assert result.stdout.startswith("pipeline warn")


def test_config_validate_file(bad: Path) -> None:
    ok = runner.invoke(app, ["config", "validate", str(TEXT)])
    assert ok.exit_code == 0
    assert f"{TEXT}: valid" in ok.stdout
    fail = runner.invoke(app, ["config", "validate", str(bad)])
    assert fail.exit_code == 1
    assert f"{bad}:7:15: error E103" in fail.stderr


def test_config_validate_file_json(bad: Path) -> None:
    result = runner.invoke(app, ["config", "validate", str(bad), "--output", "json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert set(data) == {"is_valid", "error_count", "warning_count", "issues"}
    assert data["issues"][0]["code"] == "E103"


def test_config_validate_shipped_dir() -> None:
    result = runner.invoke(app, ["config", "validate", str(PIPELINES)])
    assert result.exit_code == 0, result.output
    assert result.stdout.count(": valid") == len(list(PIPELINES.glob("*.yaml")))


def test_config_validate_dir_with_a_bad_file(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(TEXT.read_text(), encoding="utf-8")
    (tmp_path / "bad.yml").write_text(BAD, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a pipeline", encoding="utf-8")
    result = runner.invoke(app, ["config", "validate", str(tmp_path), "-o", "json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["is_valid"] is False
    files = {Path(f["file"]).name: f for f in data["files"]}
    assert set(files) == {"good.yaml", "bad.yml"}
    assert files["good.yaml"]["is_valid"] is True
    assert [i["code"] for i in files["bad.yml"]["issues"]] == ["E103"]


def test_config_validate_empty_dir_and_missing_file(tmp_path: Path) -> None:
    empty = runner.invoke(app, ["config", "validate", str(tmp_path)])
    assert empty.exit_code == 1
    assert "no .yaml or .yml files" in empty.stderr
    missing = runner.invoke(app, ["config", "validate", str(tmp_path / "x.yaml")])
    assert missing.exit_code == 1
    assert "E004" in missing.stderr


def test_python_dash_m_factflow_end_to_end(bad: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "factflow", "compile", str(TEXT), "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["is_valid"] is True
    fail = subprocess.run(
        [sys.executable, "-m", "factflow", "compile", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert fail.returncode == 1
    assert f"{bad}:7:15: error E103" in fail.stderr
    usage = subprocess.run(
        [sys.executable, "-m", "factflow", "compile"], capture_output=True, text=True, check=False
    )
    assert usage.returncode == 2


def test_run_input_for_a_queue_no_route_reads_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a started run would make output/ here
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"paragraphs": ["a"]}\n', encoding="utf-8")
    result = runner.invoke(app, ["run", str(TEXT), "--input", f"docs={docs}"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: --input docs: no route reads queue 'docs'; did you mean 'docs.in'? "
        "routes read: docs.in, paragraphs"
    ]
    assert result.stdout == ""  # no summary table: nothing was started
    assert not (tmp_path / "output").exists()
    assert "Traceback" not in result.output


def _plan(text: str) -> Plan:
    result = compile_text(text)
    assert result.plan is not None, result.report.to_dict()
    return result.plan


SINKS = """\
version: "1.0"
{queue}
routes:
  a:
    inbound: {{queue: docs}}
    outbound: [mid, done]
  b:
    inbound: {{queue: mid}}
    outbound: out
"""


def test_run_summary_names_outputs_storage_and_logs() -> None:
    plan = _plan(SINKS.format(queue="queue: {provider: file, path: ./output/queues}"))
    lines = where_things_went(plan, Settings(store_stages=True), "e1", Path("output/runs/e1/logs"))
    assert lines == [
        "outputs: output/queues/done.jsonl, output/queues/out.jsonl (file queues are appended "
        "to: a second run adds to them)",
        "stage storage: output/storage/executions/e1/",
        "logs: output/runs/e1/logs/",
    ]


def test_run_summary_for_other_providers_and_storage_off() -> None:
    memory = where_things_went(
        _plan(SINKS.format(queue="queue: {provider: memory}")),
        Settings(store_stages=False),
        "e1",
        Path("logs"),
    )
    assert memory[:2] == [
        "outputs: done (in memory: gone when the run ends), out (in memory: gone when the "
        "run ends)",
        "stage storage: off (FACTFLOW_STORE_STAGES=0)",
    ]
    broker = _plan(SINKS.format(queue="queue: {provider: rabbitmq}"))
    s3 = Settings(storage_uri="s3://bucket/prefix/")
    assert where_things_went(broker, s3, "e1", Path("logs"))[:2] == [
        "outputs: done on rabbitmq, out on rabbitmq",
        "stage storage: s3://bucket/prefix/executions/e1/",
    ]


def test_compile_shows_an_execution_s_effective_plan(tmp_path: Path) -> None:
    from factflow.compiler.overrides import Overrides
    from factflow.compiler.plan_codec import write_plan

    text = 'version: "1.0"\nroutes:\n  a:\n    inbound: {queue: q}\n    outbound: out\n'
    plan = compile_text(text, overrides=Overrides(default_provider="postgres")).require_plan()
    saved = write_plan(plan, tmp_path / "plan.json")
    shown = runner.invoke(app, ["compile", str(saved)])
    assert shown.exit_code == 0, shown.output
    assert "queue provider postgres" in shown.output
    as_json = runner.invoke(app, ["compile", str(saved), "--output", "json"])
    assert json.loads(as_json.output)["plan"]["queue"]["provider"] == "postgres"
    missing = runner.invoke(app, ["compile", str(tmp_path / "gone.json")])
    assert missing.exit_code != 0
