#!/usr/bin/env bash
# `make down`: stop what scripts/up.sh started (Airflow components, then the sandbox), by the ids in
# var/run/*.pid. Each of those processes leads its own session, so its children stop with it.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/airflow-env.sh
source "$REPO/scripts/airflow-env.sh"

say() { printf 'down: %s\n' "$*"; }

descendants() { # descendants PID: every process below PID (task processes lead groups of their own)
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}

stop() { # stop NAME: TERM the process group of var/run/NAME.pid and its descendants, KILL after 20 s
  local name="$1" pidfile="$ERPSYNC_RUN_DIR/$1.pid" pid i others
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null || ! grep -qa -e erpsync -e airflow "/proc/$pid/cmdline" 2>/dev/null; then
    say "$name was not running"
    rm -f "$pidfile"
    return 0
  fi
  others="$(descendants "$pid" | tr '\n' ' ')"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 20; i++)); do
    kill -0 -- "-$pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 -- "-$pid" 2>/dev/null; then
    say "$name did not stop in 20 s: killing it"
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  local other
  for other in $others; do # a task still running under it: the next run redoes it (idempotent)
    { grep -qa -e airflow -e erpsync "/proc/$other/cmdline" 2>/dev/null && kill -KILL "$other" 2>/dev/null; } || true
  done
  rm -f "$pidfile"
  say "stopped $name (pid $pid)"
}

if ! ls "$ERPSYNC_RUN_DIR"/*.pid >/dev/null 2>&1; then
  say "nothing to stop (no pid files in var/run)"
  exit 0
fi
for name in airflow-scheduler airflow-triggerer airflow-dag-processor airflow-api-server sandbox mailsink; do
  stop "$name"
done
# the Celery workers of `make up-celery`, however many were started
for pidfile in "$ERPSYNC_RUN_DIR"/airflow-celery-worker-*.pid; do
  [ -f "$pidfile" ] || continue
  stop "$(basename "$pidfile" .pid)"
done
