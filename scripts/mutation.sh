#!/usr/bin/env bash
# Mutation testing (mutmut) of the modules whose bugs lose messages or lie to users, against
# the fast in-process tests that cover them; configuration in pyproject.toml [tool.mutmut].
# Slow (tens of minutes on 2 cores), so CI does not run it.
#
#   scripts/mutation.sh                 # every module below, then killed/survived per module
#   scripts/mutation.sh factflow.masking.*   # only the mutants matching these names
#
# Results are cached in ./mutants (delete it after changing tests or pyproject.toml);
# `mutmut results` lists survivors, `mutmut show NAME` shows one.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v mutmut >/dev/null || python -m pip install --quiet -e ".[dev,mutation]"
# the worker code under test is this checkout's, whatever the editable install points at
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [ "$#" -eq 0 ]; then
  set -- \
    'factflow.conditions.*' \
    'factflow.masking.*' \
    'factflow.deadletter.*' \
    'factflow.compiler.plan.xǁRetryPolicyǁ*' \
    'factflow.dataflows.circuit.*' \
    'factflow.dataflows.invoke.*'
fi
mutmut run "$@"

# killed / survived per module; a mutant that timed out or crashed counts as killed, one
# that no test reaches ("no tests") as survived
mutmut results --all true > mutants/results.txt
python - "$@" <<'PY'
import collections
import fnmatch
import sys
from pathlib import Path

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
    print(f"{module:30} {c['killed']:4}/{total:<4} killed {score:5.1f}%  survived {c['survived']}  {rest}")
PY
