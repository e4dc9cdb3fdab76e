"""The one error tree of the sync protocol.

Every error a peer, a file or a user can cause is a subclass of `SyncError`
and carries a message that says what was wrong and what to do. Edges (HTTP
views, CLI commands) translate the class to a status or an exit message with
`http_status` and `code`; nothing below the edge formats errors for people.

    SyncError
    ├── ProtocolError          400  malformed, non-canonical, oversize, wrong version
    │   └── BundleError        400  a bundle file is damaged or not a bundle
    ├── VerificationError      403  bad hash, bad signature, wrong county, weak key
    │   ├── AuthorizationError 403  an author or peer not allowed to do this
    │   └── AnswerVerificationError 403  a parent's answer its key does not vouch for
    ├── SequenceError          409  gap, fork, frozen feed
    ├── KeyFileError           400  a key file that cannot be read or decrypted
    ├── StoreError             500  the local database refused an operation
    └── TransportError         503  the link failed; retry later
"""

from __future__ import annotations


class SyncError(Exception):
    """Root of every error raised by `sync_protocol`."""

    http_status = 500
    code = "sync_error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __reduce__(self) -> tuple[object, ...]:
        # keep the hint when an error crosses a process boundary (verify_pool)
        return (_rebuild, (type(self), self.message, self.hint))

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message

    def to_dict(self) -> dict[str, str]:
        """The stable JSON shape used on the wire and by `--json` CLIs."""
        out = {"code": self.code, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        return out


def _rebuild(cls: type[SyncError], message: str, hint: str | None) -> SyncError:
    return cls(message, hint=hint)


class ProtocolError(SyncError):
    """Bytes that do not follow the protocol: the sender must fix them."""

    http_status = 400
    code = "protocol_error"


class BundleError(ProtocolError):
    """A bundle file that is damaged, truncated or not a bundle at all."""

    code = "bundle_error"


class VerificationError(SyncError):
    """Well-formed data whose hash, signature or trust anchor does not check out."""

    http_status = 403
    code = "verification_failed"


class AuthorizationError(VerificationError):
    """A node or author that is not allowed to write or push this feed."""

    code = "not_allowed"


class AnswerVerificationError(VerificationError):
    """An answer in the parent's name that the parent's key does not vouch for: nothing is acted on."""

    code = "answer_not_verified"


class SequenceError(SyncError):
    """Entries that do not continue the receiver's copy of a feed (gap or fork)."""

    http_status = 409
    code = "sequence_error"


class KeyFileError(SyncError):
    """A key file that cannot be read: wrong passphrase, wrong format."""

    http_status = 400
    code = "key_file_error"


class StoreError(SyncError):
    """The local store could not complete an operation; nothing was changed."""

    http_status = 500
    code = "store_error"


class TransportError(SyncError):
    """The link to a peer failed. Nothing is wrong with the data: retry later."""

    http_status = 503
    code = "transport_error"
