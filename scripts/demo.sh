#!/usr/bin/env bash
# `make demo` until the full demo lands: a local Prefect server, then the sample runbook end to
# end through the run-runbook flow, with the incident's timeline and the UI link.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=.demo
PORT=${FIRELANE_DEMO_PREFECT_PORT:-4310}
export PREFECT_HOME=$PWD/$DEMO/prefect
export PREFECT_API_URL=http://127.0.0.1:$PORT/api
export PREFECT_UI_API_URL=$PREFECT_API_URL
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export FIRELANE_DATABASE_URL=sqlite:///$PWD/$DEMO/firelane.db
PIDFILE=$DEMO/prefect-server.pid

if [ "${1:-}" = "--stop" ]; then
  [ -f $PIDFILE ] && kill "$(cat $PIDFILE)" 2>/dev/null && echo "stopped the demo Prefect server"
  rm -f $PIDFILE; exit 0
fi

mkdir -p $DEMO/prefect
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say "Firelane demo (interim): the sample runbook on a local Prefect server."
echo "The full demo (sandbox Jira/PagerDuty/Slack/Zoom, rollback, report) arrives with the demo issue."

if ! curl -fsS "$PREFECT_API_URL/health" >/dev/null 2>&1; then
  say "Starting a Prefect server on port $PORT (log: $DEMO/prefect-server.log)"
  nohup .venv/bin/prefect server start --host 127.0.0.1 --port "$PORT" \
    >$DEMO/prefect-server.log 2>&1 &
  echo $! >$PIDFILE
  for _ in $(seq 1 120); do
    curl -fsS "$PREFECT_API_URL/health" >/dev/null 2>&1 && break; sleep 0.5
  done
  curl -fsS "$PREFECT_API_URL/health" >/dev/null || { echo "Prefect server did not start"; \
    tail -20 $DEMO/prefect-server.log; exit 1; }
fi

say "Validate the runbooks"
.venv/bin/firelane validate runbooks

say "The plan (renders every step; runs nothing, contacts nothing)"
.venv/bin/firelane run sample-triage --incident examples/incident.json --plan

say "Run it for real through the run-runbook flow"
TIMEFORMAT='run took %R s (including Python and Prefect start-up)'
time .venv/bin/firelane run sample-triage --incident examples/incident.json 2>$DEMO/run.log

say "The incident and its timeline, from the incident store"
.venv/bin/firelane incidents show "$(.venv/bin/firelane incidents list --limit 1 --json \
  | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)[0]["number"])')"

say "Prefect UI: http://127.0.0.1:$PORT  (flow runs tagged incident:<id>, the steps artifact)"
echo "The server keeps running so you can look; stop it with: make demo-stop"
