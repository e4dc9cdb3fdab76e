#!/usr/bin/env bash
# Set up a virtual environment, install Sanji with its test extra, and run the whole suite
# (ruff, mypy, unit, property and end-to-end tests with real processes).
# Usage: bash scripts/test.sh [pytest args…]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/system-deps.sh browser
source scripts/venv.sh "[test]"
.venv/bin/python -m ruff check sync_protocol sanji_domain sanji_node county_server township_node village_agent tests bench scripts
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest "$@"
