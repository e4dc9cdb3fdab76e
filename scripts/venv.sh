#!/usr/bin/env bash
# Create .venv if needed and install Sanji into it; sourced by demo.sh and test.sh.
# Usage: source scripts/venv.sh [EXTRAS]   e.g. "[test]"
set -euo pipefail
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".${1:-}"
