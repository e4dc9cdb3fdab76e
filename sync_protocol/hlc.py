"""Hybrid logical clock stamps, as single integers.

A stamp is `wall_ms * 1000 + counter` (counter 0–999): it sorts like time,
stays within the canonical ±(2^53-1) range until the year 2255, and never goes
backwards on one node even if the wall clock does. Pure functions of the last
stamp and `now_ms`, which the caller passes in.
"""

from __future__ import annotations

COUNTER_SPAN = 1000


def tick(last: int, now_ms: int) -> int:
    """The stamp for a local event after `last`."""
    candidate = now_ms * COUNTER_SPAN
    return candidate if candidate > last else last + 1


def observe(last: int, remote: int, now_ms: int) -> int:
    """The stamp after receiving an entry stamped `remote`."""
    return tick(max(last, remote), now_ms)


def wall_ms(stamp: int) -> int:
    return stamp // COUNTER_SPAN
