#!/usr/bin/env bash
# The README's main command: installs factflow, validates and compiles the shipped
# pipelines, then runs the text pipeline on its sample input and prints what came out.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet --disable-pip-version-check -e .
factflow config validate pipelines/
factflow compile pipelines/text.yaml
rm -rf output/queues
factflow run pipelines/text.yaml --input docs.in=pipelines/data/docs.in.jsonl
for queue in output/queues/*.jsonl; do
  echo "== $queue"
  python -c 'import json,sys; [print(" ", json.loads(l)["payload"].get("text")) for l in open(sys.argv[1])]' "$queue"
done
