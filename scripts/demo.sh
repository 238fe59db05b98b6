#!/usr/bin/env bash
# The README's main command: installs factflow, then validates and compiles every shipped
# pipeline, printing each plan.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet --disable-pip-version-check -e .
factflow config validate pipelines/
for pipeline in pipelines/*.yaml; do
  echo
  factflow compile "$pipeline"
done
