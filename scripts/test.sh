#!/usr/bin/env bash
# Set up a virtual environment, install Sanji with its test extra, and run the whole suite.
# Usage: bash scripts/test.sh [pytest args…]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
.venv/bin/python -m ruff check sync_protocol sanji_node county_server township_node village_agent tests bench scripts
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest "$@"
