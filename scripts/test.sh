#!/usr/bin/env bash
# Set up a virtual environment, install Sanji with its test extra, and run the whole suite
# (ruff, mypy, unit, property and end-to-end tests with real processes).
# Usage: bash scripts/test.sh [pytest args…]
# The tests run in two worker processes (pytest-xdist, each test file whole on one worker, in order):
# most of the suite's time is real processes waiting on each other. SANJI_TEST_WORKERS=N changes the
# number (1: all in this process, e.g. for `-x` or `--pdb`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/system-deps.sh browser
source scripts/venv.sh "[test]"
.venv/bin/python -m ruff check sync_protocol sanji_domain sanji_node county_server township_node village_agent tests bench scripts
.venv/bin/python -m mypy
workers="${SANJI_TEST_WORKERS:-2}"
if [ "$workers" -gt 1 ]; then
  exec .venv/bin/python -m pytest -n "$workers" --dist loadfile "$@"
fi
exec .venv/bin/python -m pytest "$@"
