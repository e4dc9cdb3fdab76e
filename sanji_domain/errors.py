"""Domain errors: part of the one error tree rooted at `sync_protocol.errors.SyncError`.

SyncError
└── DomainError            400  something a user asked for that the domain refuses
    ├── ValidationError    400  bad input: a field, a row, an ID number (names what and where)
    ├── NotFoundError      404  no such case, item or record
    └── TransitionError    409  a state change not allowed for this role or from this state
"""

from __future__ import annotations

from sync_protocol.errors import SyncError


class DomainError(SyncError):
    """Root of the domain's errors; edges translate it like any `SyncError`."""

    http_status = 400
    code = "domain_error"


class ValidationError(DomainError):
    """Input that fails validation; the message names the field (and row) and the problem."""

    code = "invalid_input"


class NotFoundError(DomainError):
    http_status = 404
    code = "not_found"


class TransitionError(DomainError):
    """A command the case state machine refuses for this role or this state."""

    http_status = 409
    code = "transition_not_allowed"
