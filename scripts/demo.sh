#!/usr/bin/env bash
# Set up a virtual environment, install Sanji, and run the local three-tier demo:
# a county, two townships and three villages on 127.0.0.1, with the demo catalog and cases.
# Usage: bash scripts/demo.sh [--dir DIR] [--keep] [--no-wait]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/python scripts/demo.py "$@"
