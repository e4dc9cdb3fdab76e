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
    gist = "同步出错"  # what the user reads first when the message itself is not in Chinese

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

    @property
    def for_people(self) -> str:
        """The message, Chinese first: as written when it starts in Chinese, else the class's gist before it."""
        first = self.message[:1]
        return self.message if "\u3400" <= first <= "\u9fff" else f"{self.gist} ({self.message})"

    def to_dict(self) -> dict[str, str]:
        """The stable JSON shape used on the wire and by `--json` CLIs (the message Chinese first)."""
        out = {"code": self.code, "message": self.for_people}
        if self.hint:
            out["hint"] = self.hint
        return out


def _rebuild(cls: type[SyncError], message: str, hint: str | None) -> SyncError:
    return cls(message, hint=hint)


class ProtocolError(SyncError):
    """Bytes that do not follow the protocol: the sender must fix them."""

    http_status = 400
    code = "protocol_error"
    gist = "数据格式不对，已拒绝"


class BundleError(ProtocolError):
    """A bundle file that is damaged, truncated or not a bundle at all."""

    code = "bundle_error"
    gist = "数据包有问题，没有导入"


class VerificationError(SyncError):
    """Well-formed data whose hash, signature or trust anchor does not check out."""

    http_status = 403
    code = "verification_failed"
    gist = "数据校验不通过，已拒绝"


class AuthorizationError(VerificationError):
    """A node or author that is not allowed to write or push this feed."""

    code = "not_allowed"
    gist = "没有权限，已拒绝"


class AnswerVerificationError(VerificationError):
    """An answer in the parent's name that the parent's key does not vouch for: nothing is acted on."""

    code = "answer_not_verified"
    gist = "上级的回答没有通过校验，已拒绝"


class SequenceError(SyncError):
    """Entries that do not continue the receiver's copy of a feed (gap or fork)."""

    http_status = 409
    code = "sequence_error"
    gist = "数据顺序不对"


class KeyFileError(SyncError):
    """A key file that cannot be read: wrong passphrase, wrong format."""

    http_status = 400
    code = "key_file_error"
    gist = "本机密钥文件有问题"


class StoreError(SyncError):
    """The local store could not complete an operation; nothing was changed."""

    http_status = 500
    code = "store_error"
    gist = "本机数据库出错"


class TransportError(SyncError):
    """The link to a peer failed. Nothing is wrong with the data: retry later."""

    http_status = 503
    code = "transport_error"
    gist = "网络不通，稍后重试"
