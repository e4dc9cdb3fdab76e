"""Injected crashes for the reliability suite: `SANJI_FAULT=STEP:N` kills this process at the Nth STEP.

The store and the node programs call `point("apply")`, `point("bundle")`, … at
the steps where a crash matters (inside a transaction, just after its commit,
between two commits). Without the variable, which is how every node runs, a
point is one comparison. With it, the Nth time this process reaches STEP it
kills itself at once, as `kill -9` would: no `finally`, no rollback, no flush
(SIGKILL on POSIX; on Windows `os.kill` with SIGTERM is TerminateProcess).

Steps (tests/reliability/test_kill9.py drives them): `apply` (a received batch
applied: before and after its commit), `bundle` (a bundle import: after each
batch of its one transaction, and after the commit), `append` (a node writes
its own entries: before and after the commit; a catalog release and a
`resolve-fork` decision are appends), `resolve` (a laptop taking the county's
decision on a fork: setting its branch aside, each re-issued record),
`quarantine` (the county releasing or refusing a quarantined batch: after the
entries, after the decision and its audit row, after the commit).
"""

from __future__ import annotations

import os
import signal

ENV = "SANJI_FAULT"


def _parse(spec: str) -> tuple[str, int] | None:
    step, _, n = spec.partition(":")
    return (step, int(n)) if step and n.isdigit() and int(n) > 0 else None


_PLAN = _parse(os.environ.get(ENV, ""))
_seen: dict[str, int] = {}


def point(step: str) -> None:
    """A place where a crash may happen; dies here if `SANJI_FAULT` says so."""
    if _PLAN is None or _PLAN[0] != step:
        return
    _seen[step] = n = _seen.get(step, 0) + 1
    if n == _PLAN[1]:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
