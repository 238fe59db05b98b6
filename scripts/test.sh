#!/usr/bin/env bash
# The README's test command: installs everything on a fresh machine, starts the test
# services, then runs ruff, mypy and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
if [ -x scripts/services.sh ] && [ "${FACTFLOW_SKIP_SERVICES:-0}" != "1" ]; then
  scripts/services.sh start
  # shellcheck disable=SC1091
  eval "$(scripts/services.sh env)"
fi
ruff check factflow tests bench
ruff format --check factflow tests bench
mypy
lint-imports --no-cache
python -m pytest -q "$@"
