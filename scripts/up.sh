#!/usr/bin/env bash
# `make up`: install (first run only), start the sandbox ERP + storefront and Airflow 3 (scheduler,
# API server, DAG processor, triggerer) in the background, wait until they are healthy and the
# DAGs are registered and unpaused, then print the UI URL and login. Safe to run again: what
# already runs is left alone. `make down` (scripts/down.sh) stops it all.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
# every DAG file is named after its dag_id; the flows whose scheduled runs read only their own
# interval get one manual run at first start, to pick up what the sandbox already holds
DAG_IDS=()
for f in dags/*.py; do DAG_IDS+=("$(basename "$f" .py)"); done
FIRST_SYNC_DAGS=(customers_sync orders_sync)
COMPONENTS=(scheduler dag-processor triggerer api-server)

say() { printf 'up: %s\n' "$*"; }
die() { printf 'up: ERROR: %s\n' "$*" >&2; exit 1; }

# --- 1. Python 3.11 venv with the pinned stack (scripts/bootstrap.sh: skipped when nothing changed)
"$REPO/scripts/bootstrap.sh"

# shellcheck source=scripts/airflow-env.sh
source "$REPO/scripts/airflow-env.sh"
mkdir -p "$ERPSYNC_RUN_DIR" "$ERPSYNC_LOG_DIR" "$AIRFLOW_HOME"

# --- helpers: background processes with a pid file each -----------------------------------------
# A pid file holds the id of a process that leads its own session (setsid), so down.sh can stop
# it together with its children.
running() { # running NAME -> 0 when the process of var/run/NAME.pid is alive and is ours
  local pidfile="$ERPSYNC_RUN_DIR/$1.pid" pid
  [ -f "$pidfile" ] || return 1
  pid="$(cat "$pidfile")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -qa -e erpsync -e airflow "/proc/$pid/cmdline" 2>/dev/null
}

start() { # start NAME COMMAND... : start in the background unless already running
  local name="$1"
  shift
  if running "$name"; then
    say "$name already running (pid $(cat "$ERPSYNC_RUN_DIR/$name.pid"))"
    return 0
  fi
  setsid nohup "$@" >>"$ERPSYNC_LOG_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$ERPSYNC_RUN_DIR/$name.pid"
  say "started $name (pid $!, log var/log/$name.log)"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # wait_for SECONDS WHAT COMMAND... : poll COMMAND every second
  local limit="$1" i  # $2 names what is awaited (read by the caller)
  shift 2
  for ((i = 0; i < limit; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  return 1
}

# --- 2. sandbox ----------------------------------------------------------------------------------
if ! running sandbox; then
  for port in "$ERPSYNC_ERP_PORT" "$ERPSYNC_STOREFRONT_PORT"; do
    port_busy "$port" && die "port $port is taken by another program: stop it, or export ERPSYNC_ERP_PORT / ERPSYNC_STOREFRONT_PORT"
  done
  # The sandbox keeps its data in memory: a fresh one is a new world, so the state store of the
  # previous one (its cross references, ledger, cursors) must go too, and the first sync is redone.
  if [ -z "${ERPSYNC_STATE_URL:-}" ] && [ -f "$ERPSYNC_HOME/state.db" ]; then
    for suffix in "" -wal -shm; do
      [ ! -f "$ERPSYNC_HOME/state.db$suffix" ] || mv -f "$ERPSYNC_HOME/state.db$suffix" "$ERPSYNC_HOME/state.db.previous$suffix"
    done
    say "fresh sandbox: the previous state store is kept as var/state.db.previous"
  fi
  rm -f "$AIRFLOW_HOME/.first-sync-triggered"
  FRESH_SANDBOX=1
fi
start sandbox python -m erpsync.sandbox --erp-port "$ERPSYNC_ERP_PORT" --storefront-port "$ERPSYNC_STOREFRONT_PORT"
sandbox_healthy() {
  curl -fsS "http://127.0.0.1:$ERPSYNC_ERP_PORT/_admin/health" &&
    curl -fsS "http://127.0.0.1:$ERPSYNC_STOREFRONT_PORT/_admin/health"
}
wait_for 60 sandbox sandbox_healthy ||
  die "the sandbox is not healthy on ports $ERPSYNC_ERP_PORT/$ERPSYNC_STOREFRONT_PORT after 60 s (see var/log/sandbox.log)"

# --- 2b. mail sink for alert e-mails (var/mail/new/), unless SMTP points elsewhere ---------------
if grep -q "\"port\":$ERPSYNC_SMTP_PORT" <<<"$AIRFLOW_CONN_SMTP_DEFAULT"; then
  if ! running mailsink && port_busy "$ERPSYNC_SMTP_PORT"; then
    die "port $ERPSYNC_SMTP_PORT (mail sink) is taken by another program: stop it, or export ERPSYNC_SMTP_PORT"
  fi
  start mailsink python -m erpsync_airflow.mailsink --port "$ERPSYNC_SMTP_PORT" --maildir "$ERPSYNC_HOME/mail"
fi

# --- 2c. `make up-celery`: PostgreSQL databases of their own, Redis as the Celery broker ----------
if [ "$AIRFLOW__CORE__EXECUTOR" = CeleryExecutor ]; then
  # a fresh sandbox is a new world: the state store of the previous one goes (as state.db above)
  FRESH_SANDBOX="${FRESH_SANDBOX:-0}" python - <<'PY' || die "PostgreSQL on $ERPSYNC_PG_SERVER is needed for the CeleryExecutor (metadata DB and state store): start it, or export ERPSYNC_PG_SERVER=user@host:port"
import os
import psycopg
from psycopg import sql
with psycopg.connect(f"postgresql://{os.environ['ERPSYNC_PG_SERVER']}/postgres", autocommit=True, connect_timeout=5) as conn:
    if os.environ["FRESH_SANDBOX"] == "1" and os.environ["ERPSYNC_STATE_URL"].endswith("/erpsync_celery_state"):
        conn.execute("DROP DATABASE IF EXISTS erpsync_celery_state WITH (FORCE)")
        print("up: fresh sandbox: the state store erpsync_celery_state starts empty")
    for name in ("erpsync_celery_airflow", "erpsync_celery_state"):
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"up: created the PostgreSQL database {name}")
PY
  python - <<'PY' || die "the Celery broker $AIRFLOW__CELERY__BROKER_URL does not answer: start Redis (apt-get install redis-server), or export AIRFLOW__CELERY__BROKER_URL"
import os
import redis
redis.Redis.from_url(os.environ["AIRFLOW__CELERY__BROKER_URL"], socket_connect_timeout=5).ping()
PY
fi

# --- 3. Airflow ----------------------------------------------------------------------------------
say "migrating the Airflow metadata DB (log: var/log/airflow-db-migrate.log)"
airflow db migrate >>"$ERPSYNC_LOG_DIR/airflow-db-migrate.log" 2>&1 ||
  { tail -n 30 "$ERPSYNC_LOG_DIR/airflow-db-migrate.log" >&2; die "airflow db migrate failed"; }
# one pool per external system, sized from its Connection's extra (rps, concurrency): the tasks
# run in them, and a task whose pool is missing is never scheduled (`airflow pools set` each)
say "sizing the rate-budget pools from the Connections (erpsync pools sync)"
erpsync pools sync >>"$ERPSYNC_LOG_DIR/airflow-pools.log" 2>&1 ||
  { tail -n 30 "$ERPSYNC_LOG_DIR/airflow-pools.log" >&2; die "erpsync pools sync failed"; }

if ! running airflow-api-server && port_busy "$ERPSYNC_AIRFLOW_PORT"; then
  die "port $ERPSYNC_AIRFLOW_PORT is taken by another program: stop it, or export ERPSYNC_AIRFLOW_PORT"
fi
for component in "${COMPONENTS[@]}"; do
  start "airflow-$component" airflow "$component"
done

HEALTH_URL="http://127.0.0.1:$ERPSYNC_AIRFLOW_PORT/api/v2/monitor/health"
healthy() {
  curl -fsS "$HEALTH_URL" | python -c '
import json, sys
h = json.load(sys.stdin)
sys.exit(any(v.get("status") != "healthy" for v in h.values() if isinstance(v, dict) and "status" in v))'
}
say "waiting for Airflow to be healthy ($HEALTH_URL)"
wait_for 180 health healthy || die "Airflow is not healthy after 180 s: $(curl -sS "$HEALTH_URL" 2>&1 | head -c 400) (logs: var/log/airflow-*.log)"
if [ "$AIRFLOW__CORE__EXECUTOR" = CeleryExecutor ]; then
  # the Celery workers once the API server answers (a task started before it fails its try);
  # each worker: its own name (a try's host in the UI) and its own log server port
  for ((i = 1; i <= ERPSYNC_CELERY_WORKERS; i++)); do
    start "airflow-celery-worker-$i" env ERPSYNC_WORKER_NAME="erpsync-worker-$i" \
      AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT="$((8792 + i))" \
      airflow celery worker --celery-hostname "erpsync-worker-$i@%h"
  done
fi

registered() {
  local listed
  listed="$(airflow dags list --output plain 2>/dev/null)" || return 1
  for dag_id in "${DAG_IDS[@]}"; do grep -qw "$dag_id" <<<"$listed" || return 1; done
}
say "waiting for the ${#DAG_IDS[@]} DAGs to be registered"
wait_for 120 dags registered || {
  airflow dags list-import-errors >&2 || true
  die "the DAGs are not registered after 120 s (log: var/log/airflow-dag-processor.log)"
}
for dag_id in "${DAG_IDS[@]}"; do
  airflow dags unpause "$dag_id" >/dev/null 2>&1 || die "could not unpause $dag_id"
done

# Scheduled runs read only their own data interval; the records the sandbox already holds are
# picked up once by a manual run (which follows the flow's cursor from the beginning).
FIRST_SYNC="$AIRFLOW_HOME/.first-sync-triggered"
if [ ! -f "$FIRST_SYNC" ]; then
  for dag_id in "${FIRST_SYNC_DAGS[@]}"; do
    airflow dags trigger "$dag_id" >/dev/null 2>&1 || die "could not trigger the first run of $dag_id"
  done
  touch "$FIRST_SYNC"
  say "triggered a first full sync: ${FIRST_SYNC_DAGS[*]}"
fi

PASSWORD="$(python -c '
import json, sys
print(json.load(open(sys.argv[1])).get("admin", "?"))' "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" 2>/dev/null || echo '?')"
cat <<EOF

erpsync is up.
  Airflow UI   http://127.0.0.1:$ERPSYNC_AIRFLOW_PORT   user admin   password $PASSWORD
  sandbox      ERP http://127.0.0.1:$ERPSYNC_ERP_PORT   storefront http://127.0.0.1:$ERPSYNC_STOREFRONT_PORT
  DAGs         ${#DAG_IDS[@]} unpaused: ${DAG_IDS[*]}
  pools        erpsync_erp, erpsync_storefront (rate budget from the Connections: airflow pools list)
  alert mails  var/mail/new/ (SMTP sink on 127.0.0.1:$ERPSYNC_SMTP_PORT)
  logs         var/log/   state store   ${ERPSYNC_STATE_URL:-sqlite:///$ERPSYNC_HOME/state.db}
  executor     $AIRFLOW__CORE__EXECUTOR${ERPSYNC_CELERY_WORKERS:+ ($ERPSYNC_CELERY_WORKERS workers, broker ${AIRFLOW__CELERY__BROKER_URL:-})}
  CLI          source scripts/airflow-env.sh && airflow dags list
  stop         make down
EOF
