"""Size bounds that every reader checks before it trusts a length.

The numbers are part of the protocol (docs/protocol.md §7): a receiver rejects
anything larger, so a sender must never produce it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 256 * 1024
    """Canonical body of one entry."""
    max_header_bytes: int = 2048
    """Canonical header of one entry."""
    max_head_bytes: int = 2048
    """Canonical signed head."""
    max_entries_per_batch: int = 10_000
    max_batch_bytes: int = 16 * 1024 * 1024
    max_batches_per_page: int = 4096
    max_page_bytes: int = 64 * 1024 * 1024
    max_bundle_header_bytes: int = 16 * 1024 * 1024
    max_depth: int = 32
    """Nesting depth of a canonical JSON value."""
    max_container_items: int = 100_000
    """Items in one JSON array or object."""
    max_string_bytes: int = 256 * 1024
    """UTF-8 bytes of one JSON string (key or value)."""


DEFAULT_LIMITS = Limits()
