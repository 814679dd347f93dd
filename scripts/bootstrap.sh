#!/usr/bin/env bash
# Creates .venv with Python 3.11 and installs the pinned stack plus erpsync (editable).
# Idempotent: a stamp keyed on requirements.txt and pyproject.toml skips the install when nothing changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(0 if sys.version_info[:2]==(3,11) else 1)'; then
      PY="$cand"; break
    fi
  done
fi
if [[ -z "$PY" ]]; then
  echo "erpsync needs Python 3.11: install it (e.g. apt-get install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
STAMP=.venv/.erpsync-installed
WANT="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$WANT" ]]; then
  echo "erpsync: installing the pinned stack into .venv (first run takes a few minutes)..."
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$WANT" > "$STAMP"
fi
