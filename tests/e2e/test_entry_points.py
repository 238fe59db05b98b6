"""`python -m bytewax.run factflow.flow` in its two forms, and a bad pipeline."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.helpers import bytewax_run, read_jsonl, write_jsonl

PIPELINE = """\
version: "1.0"
name: entry
queue: {provider: file, path: ./queues}
routes:
  ingest:
    inbound: {queue: docs.in}
    adapters:
      - type: split
        config: {field: items}
    outbound:
      - queue: out/big
        condition: {field: payload, operator: gt, value: 1}
      - queue: out/all
"""


def _setup(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PIPELINE)
    write_jsonl(tmp_path / "queues" / "docs.in.jsonl", [{"items": [1, 2]}, {"items": [3]}])


def _check_outputs(tmp_path: Path) -> None:
    queues = tmp_path / "queues"
    assert sorted(r["payload"] for r in read_jsonl(queues / "out_all.jsonl")) == [1, 2, 3]
    assert sorted(r["payload"] for r in read_jsonl(queues / "out_big.jsonl")) == [2, 3]
    record = read_jsonl(queues / "out_all.jsonl")[0]
    assert set(record) == {
        "message_id",
        "correlation_id",
        "execution_id",
        "route_id",
        "stage",
        "timestamp",
        "payload",
        "metadata",
    }
    assert (record["route_id"], record["stage"]) == ("ingest", "split")


def test_module_entry_with_factflow_pipeline(tmp_path: Path, env: dict[str, str]) -> None:
    _setup(tmp_path)
    done = bytewax_run(
        "factflow.flow", "-w", "2", env={**env, "FACTFLOW_PIPELINE": "p.yaml"}, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    _check_outputs(tmp_path)


def test_build_expression_entry(tmp_path: Path, env: dict[str, str]) -> None:
    _setup(tmp_path)
    env = {k: v for k, v in env.items() if k != "FACTFLOW_PIPELINE"}
    done = bytewax_run("factflow.flow:build('p.yaml')", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    _check_outputs(tmp_path)


def test_missing_pipeline_setting_is_explained(tmp_path: Path, env: dict[str, str]) -> None:
    env = {k: v for k, v in env.items() if k != "FACTFLOW_PIPELINE"}
    done = bytewax_run("factflow.flow", env=env, cwd=tmp_path)
    assert done.returncode != 0
    assert "FACTFLOW_PIPELINE" in done.stderr
    assert "Traceback" not in done.stderr


BAD = """\
version: "1.0"
name: bad
queue: {provider: file, path: ./queues}
routes:
  r:
    inbound: {queue: in}
    adapters:
      - type: no_such_adapter
    outbound: out
"""


def test_bad_pipeline_prints_diagnostics_and_exits_1(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "bad.yaml").write_text(BAD)
    for args, extra in (
        (["factflow.flow"], {"FACTFLOW_PIPELINE": "bad.yaml"}),
        (["factflow.flow:build('bad.yaml')"], {}),
    ):
        done = bytewax_run(*args, env={**env, **extra}, cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        assert "bad.yaml:8:15: error E103" in done.stderr
        assert "no_such_adapter" in done.stderr
        assert "Traceback" not in done.stderr
        assert not (tmp_path / "queues").exists()


def test_a_worker_given_only_the_compiled_plan_runs(tmp_path: Path, env: dict[str, str]) -> None:
    """What a launcher does: compile once, hand the workers plan.json; the YAML file is
    gone by the time they start, so they cannot have compiled it again."""
    from factflow.compiler.compile import compile_file
    from factflow.compiler.plan_codec import read_plan, write_plan

    _setup(tmp_path)
    plan = compile_file(tmp_path / "p.yaml").require_plan()
    saved = write_plan(plan, tmp_path / "run" / "plan.json")
    (tmp_path / "p.yaml").unlink()
    assert read_plan(saved) == plan  # the validated plan is the running one
    worker_env = {k: v for k, v in env.items() if k != "FACTFLOW_PIPELINE"}
    done = bytewax_run(
        "factflow.flow", "-w", "2", env={**worker_env, "FACTFLOW_PLAN": str(saved)}, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    _check_outputs(tmp_path)


def test_an_unreadable_plan_is_one_line_and_exit_1(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "plan.json").write_text('{"format": 99}')
    worker_env = {k: v for k, v in env.items() if k != "FACTFLOW_PIPELINE"}
    done = bytewax_run(
        "factflow.flow", env={**worker_env, "FACTFLOW_PLAN": "plan.json"}, cwd=tmp_path
    )
    assert done.returncode == 1
    assert "not a factflow plan" in done.stderr
    assert "Traceback" not in done.stderr
