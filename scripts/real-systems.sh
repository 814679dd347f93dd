#!/usr/bin/env bash
# Run erpsync against the real systems: Tryton 8.2 (ERP) and Vendure 3.7 (storefront).
#
#   scripts/real-systems.sh [up]   install (pinned, under var/real-systems), initialise once, start both,
#                                  print the Airflow Connections that point at them
#   scripts/real-systems.sh down   stop them
#   scripts/real-systems.sh status
#   scripts/real-systems.sh up --fresh    start from fresh databases
#
# Needs PostgreSQL on 127.0.0.1:5432 (ERPSYNC_PG_HOST/PORT/USER/PASSWORD to point elsewhere) and Node 20.
# The first run installs and initialises (about 3 minutes); later runs start in seconds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh >/dev/null
cmd="${1:-up}"
[ $# -gt 0 ] && shift
exec .venv/bin/python real-systems/realsys.py "$cmd" "$@"
