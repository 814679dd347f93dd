#!/usr/bin/env bash
# Run erpsync against the real systems: Tryton 8.2 (ERP) and Vendure 3.7 (storefront).
#
#   scripts/real-systems.sh [up]   install (pinned, under var/real-systems), initialise once, start both,
#                                  print the Airflow Connections that point at them
#   scripts/real-systems.sh down   stop them
#   scripts/real-systems.sh status
#   scripts/real-systems.sh up --fresh    start from fresh databases
#
# Options (defaults in brackets): up/down/status --tryton-db NAME [erpsync_tryton] --vendure-db NAME
# [erpsync_vendure]; up --tryton-port N [8000] --vendure-port N [3000] (Vendure listens on it while its
# template is built too); before the command: --pg-host, --pg-port, --pg-user. On a shared PostgreSQL
# it touches only its own exact names: the two databases named, the current templates, and stale
# templates it built itself (var/real-systems/templates.json) -- never databases found by a prefix.
#   scripts/real-systems.sh up --tryton-db ann_tryton --vendure-db ann_vendure --vendure-port 3100
#
# Needs PostgreSQL on 127.0.0.1:5432 (ERPSYNC_PG_HOST/PORT/USER/PASSWORD or --pg-* to point elsewhere) and Node 20.
# The first run installs and initialises (about 3 minutes); later runs start in seconds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh >/dev/null
[ $# -eq 0 ] && set -- up
exec .venv/bin/python real-systems/realsys.py "$@"
