#!/usr/bin/env bash
# The README's main command, on embedded defaults (nothing but pip): installs factflow,
# validates the shipped pipelines, starts `factflow serve --embedded` (embedded Postgres,
# postgres queue, file storage), runs the shipped text pipeline through the HTTP API with
# its sample input, prints the results, and stops the server (DEMO_KEEP_SERVER=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet --disable-pip-version-check -e ".[all]"
factflow config validate pipelines/

port=${DEMO_PORT:-8000}
export FACTFLOW_SERVER_URL="http://127.0.0.1:$port"
mkdir -p output
factflow serve --embedded --port "$port" > output/demo-server.log 2>&1 &
server=$!
stop_server() { kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true; }
[ "${DEMO_KEEP_SERVER:-0}" = "1" ] || trap stop_server EXIT

for _ in $(seq 1 120); do
  factflow system health > /dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat output/demo-server.log; exit 1; }
  sleep 1
done
factflow system health

json() { python -c "import json,sys; print(json.load(sys.stdin)$1)"; }
name="text-demo-$(date +%s)"
config=$(factflow config create -f pipelines/text.yaml --name "$name" -o json | json '["id"]')
execution=$(factflow config run "$config" --input docs.in=pipelines/data/docs.in.jsonl -o json \
  | json '["execution_id"]')
echo "config $config, execution $execution"
factflow execution wait "$execution"
factflow execution stats "$execution"
factflow lineage stats --execution "$execution"
factflow storage list --execution "$execution" --limit 5
for queue in "output/server/runs/$execution"/queues/*.jsonl; do
  echo "== $(basename "$queue" .jsonl)"
  python -c 'import json,sys; [print("  ", json.loads(l)["payload"]["text"]) for l in open(sys.argv[1])]' "$queue"
done
echo
echo "server: $FACTFLOW_SERVER_URL  (API docs $FACTFLOW_SERVER_URL/docs, log output/demo-server.log)"
