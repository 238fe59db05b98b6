#!/usr/bin/env bash
# The README's test command: installs everything on a fresh machine, starts the test
# services, then runs ruff, mypy and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
# web_crawler's tests drive the system's Chromium (Playwright's own browser download is
# not used); without one they skip, saying why
if ! command -v chromium > /dev/null 2>&1 && command -v apt-get > /dev/null 2>&1 \
  && [ "$(id -u)" = 0 ]; then
  { apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; } \
    > /dev/null || echo "chromium could not be installed: web_crawler's tests will skip"
fi
if [ -x scripts/services.sh ] && [ "${FACTFLOW_SKIP_SERVICES:-0}" != "1" ]; then
  scripts/services.sh start
  # shellcheck disable=SC1091
  eval "$(scripts/services.sh env)"
fi
ruff check factflow tests bench
ruff format --check factflow tests bench
mypy
lint-imports --no-cache
# Most of the suite waits (worker start-up, retry schedules, brokers), so it runs on
# FACTFLOW_TEST_WORKERS pytest workers (default 4; 0 runs it in one process), a test file
# per worker at a time; the tests that stop a shared broker (marker serial) run
# afterwards, alone, so no other test sees the outage they make. Arguments go to one
# plain pytest run.
workers=${FACTFLOW_TEST_WORKERS:-4}
if [ "$#" -gt 0 ] || [ "$workers" = 0 ]; then
  python -m pytest -q "$@"
  exit
fi
python -m pytest -q -n "$workers" --dist loadfile -m "not serial"
python -m pytest -q -m serial
