#!/usr/bin/env bash
# The README's main command, on embedded defaults (nothing but pip and no network beyond
# 127.0.0.1): installs factflow, renders factflow's own docs into a small documentation
# site with a sitemap and serves it on 127.0.0.1, starts `factflow serve --embedded`
# (embedded Postgres, file queues and storage), runs pipelines/docs-search.yaml (docs-ingest
# plus embedding and indexing) through the HTTP API, prints what it made, asks two
# questions through the search API (top hits with heading path and source URL) and prints
# the top hit's lineage back to the page's URL, and ends with a question answered by the
# chat API in extractive mode (no LLM), streamed, with its numbered sources. Stops both
# servers at the end
# (DEMO_KEEP_SERVER=1 keeps them running).
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
step() { printf '\n\033[1m[%s +%ss] %s\033[0m\n' "$1" $((SECONDS - started)) "$2"; }
json() { python -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

step 1/8 "installing factflow[all] (pip; a fresh machine downloads ~300 MB)"
python -m pip install --disable-pip-version-check --progress-bar on -e ".[all]" 2>&1 \
  | { grep --line-buffered -v '^Requirement already satisfied' || true; }

port=${DEMO_PORT:-8000}
site_port=${DEMO_SITE_PORT:-8765}
site="http://127.0.0.1:$site_port"
export FACTFLOW_SERVER_URL="http://127.0.0.1:$port"
mkdir -p output
pids=()
stop_servers() {
  for pid in "${pids[@]}"; do { kill "$pid" && wait "$pid"; } 2>/dev/null || true; done
}
[ "${DEMO_KEEP_SERVER:-0}" = "1" ] || trap stop_servers EXIT

step 2/8 "rendering README.md and docs/*.md into a site on $site"
rm -rf output/site
python scripts/docsite.py build output/site --base-url "$site"
python scripts/docsite.py serve output/site --port "$site_port" > output/demo-site.log 2>&1 &
pids+=($!)

step 3/8 "starting factflow serve --embedded on $FACTFLOW_SERVER_URL (first start initialises Postgres)"
factflow serve --embedded --port "$port" > output/demo-server.log 2>&1 &
server=$!
pids+=("$server")
for i in $(seq 1 120); do
  factflow system health > /dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat output/demo-server.log; exit 1; }
  [ $((i % 5)) -eq 0 ] && echo "  waiting for the server ($i s)"
  sleep 1
done
curl -sf "$site/sitemap.xml" > /dev/null || { cat output/demo-site.log; exit 1; }
factflow system health -o text
echo "dashboard: $FACTFLOW_SERVER_URL/ (open it to follow the run live)"

step 4/8 "storing pipelines/docs-search.yaml as a config and running it through the API"
# the shipped pipeline's init payload is {"sitemap_url": "http://127.0.0.1:8765/sitemap.xml"};
# point it at this site when DEMO_SITE_PORT moved it
sed "s#http://127.0.0.1:8765/sitemap.xml#$site/sitemap.xml#" pipelines/docs-search.yaml \
  > output/docs-search.yaml
config=$(factflow config create -f output/docs-search.yaml --name "docs-search-demo-$(date +%s)" -o json \
  | json 'd["id"]')
execution=$(factflow config run "$config" -o json | json 'd["execution_id"]')
echo "config $config, execution $execution (init payload {\"sitemap_url\": \"$site/sitemap.xml\"})"
echo "follow it live: $FACTFLOW_SERVER_URL/#/executions/$execution"
# the server loads the query model while the pipeline embeds (not on the first question)
python scripts/demo_report.py warm "$execution" > output/demo-warm.log 2>&1 &
pids+=($!)
# completes by itself once every route has drained
python scripts/demo_report.py progress "$execution"

step 5/8 "what the execution made"
python scripts/demo_report.py made "$execution"
COLUMNS=120 factflow execution stats "$execution" -o text

step 6/8 "two questions through the search API (POST /api/v1/search/rrf)"
python scripts/demo_report.py ask "How are API keys stored?" \
  "How do I resume a run killed with SIGKILL?" | tee output/demo-answers.txt

step 7/8 "the first answer's lineage, back to its page (factflow lineage chain)"
row=$(sed -n 's/^  lineage row: *//p' output/demo-answers.txt | head -n 1)
factflow lineage chain "$row" -o json | python scripts/demo_report.py chain

step 8/8 "a question answered from the docs, offline (factflow chat ask --stream: extractive, no LLM)"
factflow chat ask "How do I resume a run killed with SIGKILL?" --stream --output text

echo
echo "site: $site  server: $FACTFLOW_SERVER_URL  (API docs $FACTFLOW_SERVER_URL/docs)"
echo "logs: output/demo-server.log, output/server/runs/$execution/logs/"
echo "dashboard: $FACTFLOW_SERVER_URL/  (the first answer's lineage: $FACTFLOW_SERVER_URL/#/lineage?id=$row)"
echo "ask it questions: $FACTFLOW_SERVER_URL/#/chat"
if [ "${DEMO_KEEP_SERVER:-0}" = "1" ]; then
  echo "both servers keep running (DEMO_KEEP_SERVER=1); stop them with: kill ${pids[*]}"
elif [ -t 0 ]; then
  # on a terminal the dashboard stays up to be looked at; scripts and CI go straight on
  read -r -p "the servers run until you press Enter " _ || true
fi
