#!/usr/bin/env bash
# The long reliability run (issue 12): kill -9 (100 trials), fuzzing (10 minutes) and the other long
# tests of tests/reliability, then one summary table of their figures.
# Usage: bash scripts/reliability.sh [pytest args…]     (figures kept in $SANJI_RELIABILITY_OUT,
#        default reliability-out/; SANJI_KILL9_TRIALS, SANJI_FUZZ_SECONDS, SANJI_SEED change the run)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh "[test]"
export SANJI_LONG=1
export SANJI_RELIABILITY_OUT="${SANJI_RELIABILITY_OUT:-$PWD/reliability-out}"
rm -rf "$SANJI_RELIABILITY_OUT"
mkdir -p "$SANJI_RELIABILITY_OUT"
status=0
.venv/bin/python -m pytest tests/reliability "$@" || status=$?
.venv/bin/python -m tests.reliability.summary "$SANJI_RELIABILITY_OUT" || true
exit "$status"
