#!/usr/bin/env bash
# Mutation testing (mutmut) of the modules whose bugs lose messages or lie to users, against
# the fast tests that cover them; configuration in pyproject.toml ([tool.mutmut] for the
# whole set, [tool.factflow-mutation.NAME] for one module and its own test selection).
# Slow as a whole (tens of minutes on 2 cores), so CI does not run it.
#
#   scripts/mutation.sh invoke circuit       # named modules, each against its own tests only
#   MUTATION_CHILDREN=1 scripts/mutation.sh circuit  # mutmut workers (default 2)
#   scripts/mutation.sh --list               # the module names and what each runs
#   scripts/mutation.sh                      # every module of [tool.mutmut], one mutmut run
#   scripts/mutation.sh 'factflow.masking.*' # only the mutants matching these names
#
# A named module runs in mutants-runs/NAME/ (a copy of factflow/ and tests/ with its own
# pyproject.toml and cache); the whole set in ./mutants. Delete the cache after changing
# tests; `mutmut results` / `mutmut show NAME` (from that directory) list and show survivors.
set -euo pipefail
cd "$(dirname "$0")/.."
# mutmut starts one worker per core by default; on a shared machine that starves the rest
CHILDREN=${MUTATION_CHILDREN:-2}
ROOT=$PWD

command -v mutmut >/dev/null || python -m pip install --quiet -e ".[dev,mutation]"

modules() {  # NAME<TAB>postgres<TAB>mutant pattern, one line per [tool.factflow-mutation] table
  python - "$@" <<'PY'
import sys
import tomllib
from pathlib import Path

table = tomllib.loads(Path("pyproject.toml").read_text())["tool"]["factflow-mutation"]
for name in sys.argv[1:] or table:
    if name not in table:
        sys.exit(f"unknown module {name!r}; known: {', '.join(table)}")
    m = table[name]
    pattern = m.get("mutants") or "|".join(
        p.removesuffix(".py").replace("/", ".") + ".*" for p in m["paths"]
    )
    print(f"{name}\t{str(m.get('postgres', False)).lower()}\t{pattern}\t{' '.join(m['tests'])}")
PY
}

summary() {  # killed/survived per module of the results in mutants/results.txt (cwd)
  python - "$@" <<'PY'
import collections
import fnmatch
import sys
from pathlib import Path

# a mutant that timed out or crashed counts as killed, one no test reaches ("no tests")
# as survived
KILLED = {"killed", "timeout", "segfault"}
counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
for line in Path("mutants/results.txt").read_text().splitlines():
    name, _, status = line.strip().rpartition(": ")
    if name and any(fnmatch.fnmatch(name, p) for p in sys.argv[1:]):
        counts[name.split(".x")[0]]["killed" if status in KILLED else status] += 1
for module, c in sorted(counts.items()):
    total = sum(c.values())
    score = 100 * c["killed"] / total if total else 0.0
    rest = ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if k not in ("killed", "survived"))
    print(f"{module:40} {c['killed']:4}/{total:<4} killed {score:5.1f}%  survived {c['survived']}  {rest}")
PY
}

if [ "${1:-}" = "--list" ]; then
  modules | awk -F'\t' '{printf "%-16s postgres=%-5s %s\n  tests: %s\n", $1, $2, $3, $4}'
  exit 0
fi

if [ "$#" -eq 0 ] || [[ "$1" == *[.*]* ]]; then
  # the whole set, or mutant-name patterns, in one run from the repository root
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  if [ "$#" -eq 0 ]; then
    set -- 'factflow.conditions.*' 'factflow.masking.*' 'factflow.deadletter.*' \
      'factflow.compiler.plan.xǁRetryPolicyǁ*' 'factflow.dataflows.circuit.*' \
      'factflow.dataflows.invoke.*'
  fi
  nice -n 10 mutmut run --max-children "$CHILDREN" "$@"
  mutmut results --all true > mutants/results.txt
  summary "$@"
  exit 0
fi

lines=$(modules "$@")
PG_DIR=""
if grep -q $'\ttrue\t' <<<"$lines" && [ -z "${FACTFLOW_DATABASE_URL:-}" ]; then
  # one Postgres for every mutant (the test fixture would start one per mutant otherwise)
  PG_DIR=$(mktemp -d /tmp/factflow-mutation-pg-XXXXXX)
  FACTFLOW_DATABASE_URL=$(python -c "import sys; from factflow.db.embedded import start_embedded; print(start_embedded(sys.argv[1]).url)" "$PG_DIR/data")
  export FACTFLOW_DATABASE_URL
  trap 'python -c "import sys; from factflow.db.embedded import stop_embedded; stop_embedded(sys.argv[1])" "$PG_DIR/data"; rm -rf "$PG_DIR"' EXIT
fi

while IFS=$'\t' read -r name _postgres pattern tests; do
  run="$ROOT/mutants-runs/$name"
  mkdir -p "$run"
  # -a keeps modification times, so mutmut's cache holds for files that did not change
  rm -rf "$run/factflow" "$run/tests"
  cp -a "$ROOT/factflow" "$ROOT/tests" "$run/"
  python - "$name" "$run/pyproject.toml" <<'PY'
import json
import re
import sys
import tomllib
from pathlib import Path

text = Path("pyproject.toml").read_text()
config = tomllib.loads(text)["tool"]
module = config["factflow-mutation"][sys.argv[1]]
base = config["mutmut"]
section = {
    "source_paths": base["source_paths"],
    "only_mutate": module["paths"],
    "pytest_add_cli_args_test_selection": module["tests"],
    "pytest_add_cli_args": base["pytest_add_cli_args"],
    "process_isolation": base["process_isolation"],
}
own = "[tool.mutmut]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in section.items()) + "\n"
# the [tool.mutmut] table runs up to the next table header
text = re.sub(r"^\[tool\.mutmut\]\n(?:(?!\[).*\n|\n)*", own, text, count=1, flags=re.M)
Path(sys.argv[2]).write_text(text)
PY
  echo "== $name: $pattern against $tests"
  (
    cd "$run"
    export PYTHONPATH="$run${PYTHONPATH:+:$PYTHONPATH}"
    IFS='|' read -ra patterns <<<"$pattern"
    start=$(date +%s)
    nice -n 10 mutmut run --max-children "$CHILDREN" "${patterns[@]}" >"$run/run.log" 2>&1 || { tail -30 "$run/run.log"; exit 1; }
    mutmut results --all true > mutants/results.txt
    summary "${patterns[@]}"
    echo "   ($(( $(date +%s) - start )) s, load $(cut -d' ' -f1-3 /proc/loadavg))"
  )
done <<<"$lines"
