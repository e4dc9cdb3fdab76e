#!/usr/bin/env bash
# Set up a virtual environment, install Sanji, and run the local three-tier demo:
# a county, two townships and three villages on 127.0.0.1, with the demo catalog and cases.
# Usage: bash scripts/demo.sh [--dir DIR] [--keep] [--no-wait] [--base-port PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh ""
exec .venv/bin/python scripts/demo.py "$@"
