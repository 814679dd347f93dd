#!/usr/bin/env bash
# The test command: lint (ruff, with Airflow's AIR rules) then every test layer.
# Needs PostgreSQL on 127.0.0.1:5432 (ERPSYNC_TEST_PG_DSN to point elsewhere).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh
export PATH="$ROOT/.venv/bin:$PATH"
echo "== ruff"
ruff check .
echo "== import-linter (the layers: pyproject.toml [tool.importlinter], issue 19)"
lint-imports
echo "== mypy (the whole core, the connector contracts included: issue 18)"
mypy include/erpsync --ignore-missing-imports --follow-imports=silent
echo "== pytest"
# the slowest tests are listed at the end, to keep the whole run well inside CI's budget
exec pytest -q -p no:cacheprovider --durations=25 "$@"
