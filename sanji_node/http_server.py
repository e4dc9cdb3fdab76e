"""Waitress, bounded for strangers: what a connection may hold before anyone knows who sent it.

An I/O adapter under `serving.serve`. Waitress reads a whole request (headers,
then the body) before the Flask app sees it, so the bounds are set here, on
the connection, before authentication:

- **connections**: at most `connection_limit` open at once (poll, not select,
  so hundreds are fine); over it, new ones wait in the listen backlog;
- **slow headers**: a request's headers must be complete `header_timeout_s`
  after its first byte (slowloris), and are at most `max_header_bytes`;
- **idle**: a connection with no byte for `idle_timeout_s` is closed (a
  stalled body too: the child retries, and a re-sent page is a duplicate);
- **bodies**: at most `inbuf_bytes` of a body in memory per connection
  (the rest spools to a temporary file), at most `max_body_bytes` in all,
  and at most `max_open_bodies` bodies in progress at once: a new one closes
  the body that has been silent longest, so stalled strangers make room and
  an honest sender, whose bytes keep coming, keeps its place;
- **the sync API** (`/api/v1/sync/…`) is refused as soon as its headers are in
  when the signature headers are missing or malformed, the time is out of the
  window, or there is no `Content-Length`; then, on a parent, when the request
  names another recipient, its node is not enrolled, is revoked or is not
  below this node, or its nonce was seen (`http_api.HeaderCheck`, from the app's
  sync API): the body is never read. The signature itself covers the body, so it
  is checked after the body is in; until then a body that passed these checks
  holds at most `inbuf_bytes` in memory.

Every refusal, including waitress's own (malformed, oversize, garbage), is the
JSON error of docs/http-api.md, `{"code", "message", "hint"}`.
"""

from __future__ import annotations

import json
import logging
import re
import select
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask
from waitress.utilities import Error

from sync_protocol.auth import DEFAULT_WINDOW_MS, H_NODE, H_NONCE, H_SIG, H_TIME, H_TO
from sync_protocol.errors import ProtocolError, SyncError
from sync_protocol.feeds import check_node_id

log = logging.getLogger("sanji.http")

SIGNED_PREFIX = "/api/v1/sync/"
SIGNED = (H_NODE, H_TO, H_TIME, H_NONCE, H_SIG)
HeaderCheck = Callable[[dict[str, str]], SyncError | None]  # http_api.HeaderCheck, or any such callable
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class ServerLimits:
    """What one connection may hold and for how long, before it is authenticated (values for a LAN)."""

    connection_limit: int = 1000
    header_timeout_s: float = 10.0
    idle_timeout_s: float = 30.0
    max_header_bytes: int = 32 * 1024
    inbuf_bytes: int = 64 * 1024
    max_body_bytes: int = 64 * 1024 * 1024 + 64 * 1024  # a 64 MiB page and its headers' worth of slack
    max_open_bodies: int = 32
    threads: int = 8
    cleanup_interval_s: float = 1.0
    window_ms: int = DEFAULT_WINDOW_MS

    def waitress_options(self) -> dict[str, Any]:
        return {
            "threads": self.threads,
            # select() (Windows: no poll) takes at most 512 sockets there
            "connection_limit": self.connection_limit if hasattr(select, "poll") else min(self.connection_limit, 500),
            "channel_timeout": self.idle_timeout_s,
            "cleanup_interval": self.cleanup_interval_s,
            "max_request_header_size": self.max_header_bytes,
            "max_request_body_size": self.max_body_bytes,
            "inbuf_overflow": self.inbuf_bytes,
            "asyncore_use_poll": hasattr(select, "poll"),  # select() stops at 1,024 sockets
            "ident": "sanji",
        }


DEFAULT_SERVER_LIMITS = ServerLimits()


class Refusal(Error):  # type: ignore[misc]
    """A refusal as the JSON error of docs/http-api.md (waitress's own errors are turned into one too)."""

    def __init__(self, status: int, code: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.code = status
        self.reason = _REASONS.get(status, "Error")
        self.error = {"code": code, "message": message, **({"hint": hint} if hint else {})}

    def to_response(self, ident: str | None = None) -> tuple[str, list[tuple[str, str]], bytes]:
        body = json.dumps(self.error, ensure_ascii=False).encode("utf-8")
        return f"{self.code} {self.reason}", [("Content-Type", "application/json")], body


_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


def as_refusal(err: Error) -> Refusal:
    """Waitress's plain-text errors as the JSON error."""
    if isinstance(err, Refusal):
        return err
    status = int(err.code)
    if status == 431:
        return Refusal(
            431,
            "protocol_error",
            "请求头太大，已拒绝 (request headers too large)",
            "请求头应在 32 KiB 以内；请用本系统的程序或浏览器访问",
        )
    if status == 413:
        return Refusal(
            413,
            "protocol_error",
            "请求体太大，已拒绝 (request body too large)",
            "同步时请用较小的页 (--page-kib)，或分批导入",
        )
    if status >= 500 and status != 501:
        return Refusal(
            500, "internal", "服务器内部出错 (internal server error)", "请稍后重试；如果再次出现，请查看服务器日志"
        )
    return Refusal(
        400 if status != 501 else 501,
        "protocol_error",
        f"请求格式不对，已拒绝 (malformed request: {err.body})",
        "请用本系统的程序或浏览器访问",
    )


class JsonErrorTask(ErrorTask):  # type: ignore[misc]
    def execute(self) -> None:
        refusal = as_refusal(self.request.error)
        status, headers, body = refusal.to_response()
        self.status = status
        self.response_headers.extend(headers)
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


def check_signed_headers(
    headers: dict[str, str], content_length: int, chunked: bool, now_ms: int, window_ms: int
) -> Refusal | None:
    """The signature headers' form, the time window and a declared length: checkable before any body byte."""
    node, when = headers.get(_wsgi(H_NODE), ""), headers.get(_wsgi(H_TIME), "")
    nonce, sig = headers.get(_wsgi(H_NONCE), ""), headers.get(_wsgi(H_SIG), "")
    if not (
        _valid_node(node)
        and when.isascii()
        and when.isdigit()
        and len(when) <= 16
        and len(nonce) == 32
        and _HEX.fullmatch(nonce)
        and len(sig) == 128
        and _HEX.fullmatch(sig)
    ):
        return Refusal(
            403,
            "not_allowed",
            "请求没有正确签名，已拒绝 (request is not signed correctly)",
            "发送 X-Sanji-Node、-Time、-Nonce 和 -Signature 请求头（由本系统的同步程序签名）",
        )
    if abs(now_ms - int(when)) > window_ms:
        off = abs(now_ms - int(when)) // 1000
        return Refusal(
            403,
            "not_allowed",
            f"请求时间与本机时钟相差 {off} 秒，已拒绝 (request time is {off} s away from this node's clock)",
            f"校准两台机器的时钟，允许相差 ±{window_ms // 60000} 分钟 (check the clock of both machines)",
        )
    if chunked or content_length <= 0:
        return Refusal(
            411, "protocol_error", "同步请求必须声明长度 (Content-Length required)", "请用本系统的同步程序发送"
        )
    return None


def _valid_node(node: str) -> bool:
    try:
        check_node_id(node)
    except ProtocolError:
        return False
    return True


def _wsgi(header: str) -> str:
    return header.upper().replace("-", "_")


class GuardedParser(HTTPRequestParser):  # type: ignore[misc]
    """A request parser that asks its channel whether to take the body, once the headers are in."""

    def __init__(self, adj: Any, gate: Callable[[GuardedParser], Refusal | None] | None = None) -> None:
        super().__init__(adj)
        self.gate = gate
        self.started = time.monotonic()

    def received(self, data: bytes) -> int:
        had_headers = self.headers_finished
        n: int = super().received(data)
        refused = getattr(self, "error", None) is not None
        if not had_headers and self.headers_finished and not refused and self.gate is not None:
            refusal = self.gate(self)
            if refusal is not None:
                self.error = refusal
                self.completed = True
        return n


class GuardedChannel(HTTPChannel):  # type: ignore[misc]
    error_task_class = JsonErrorTask
    request: Any = None  # the request being received (waitress's attribute, typed)

    def __init__(self, *args: Any, **kw: Any) -> None:
        self.parser_class = lambda adj: GuardedParser(adj, self.gate)
        super().__init__(*args, **kw)

    def del_channel(self, map: Any = None) -> None:
        # every way a channel closes ends here; waitress leaves a request cut mid-body to the garbage collector,
        # with its temporary file still open
        partial, self.request = self.request, None
        if partial is not None:
            try:
                partial.close()
            except OSError:
                pass
        super().del_channel(map)

    def body_in_progress(self) -> bool:
        r = self.request
        return r is not None and r.headers_finished and not r.completed and not self.will_close

    def gate(self, req: GuardedParser) -> Refusal | None:
        if req.path.startswith(SIGNED_PREFIX) and req.command == "POST":
            refusal = check_signed_headers(
                req.headers, req.content_length, req.chunked, int(time.time() * 1000), self.server.limits.window_ms
            )
            if refusal is not None:
                return refusal
            if self.server.header_check is not None:
                err = self.server.header_check({h: req.headers[_wsgi(h)] for h in SIGNED if _wsgi(h) in req.headers})
                if err is not None:
                    log.info("refused %s from %s before its body: %s", req.path, self.addr, err.code)
                    return Refusal(err.http_status, err.code, err.for_people, err.hint)
        if req.content_length > 0 or req.chunked:
            self.server.make_room_for_body(self)
        return None


class GuardedServer(TcpWSGIServer):  # type: ignore[misc]
    """TcpWSGIServer with the header deadline and the cap on bodies in progress."""

    channel_class = GuardedChannel

    def __init__(
        self, application: Any, limits: ServerLimits, header_check: HeaderCheck | None = None, **kw: Any
    ) -> None:
        self.limits = limits
        self.header_check = header_check  # a parent's checks of the signature headers (http_api.HeaderCheck)
        super().__init__(application, map={}, **{**limits.waitress_options(), **kw})

    def close(self) -> None:
        super().close()
        close = getattr(self.header_check, "close", None)
        if close is not None:
            close()

    def make_room_for_body(self, channel: GuardedChannel) -> None:
        """At most `max_open_bodies` bodies in progress: close the one silent longest (never the newcomer)."""
        open_bodies = [c for c in list(self.active_channels.values()) if c is not channel and c.body_in_progress()]
        while len(open_bodies) >= self.limits.max_open_bodies:
            oldest = min(open_bodies, key=lambda c: c.last_activity)
            open_bodies.remove(oldest)
            log.info("closing a stalled request body from %s to make room", oldest.addr)
            oldest.will_close = True

    def maintenance(self, now: float) -> None:
        super().maintenance(now)
        deadline = time.monotonic() - self.limits.header_timeout_s
        for channel in list(self.active_channels.values()):
            r = channel.request
            if r is None or r.headers_finished or channel.will_close or channel.close_when_flushed:
                continue
            if getattr(r, "started", deadline) < deadline:
                _answer_and_close(
                    channel,
                    Refusal(
                        408,
                        "protocol_error",
                        f"请求头在 {self.limits.header_timeout_s:g} 秒内没有发完，已断开 (request headers too slow)",
                        "检查网络连接后重试",
                    ),
                )


def _answer_and_close(channel: GuardedChannel, refusal: Refusal) -> None:
    """Write a refusal on a channel no task is serving (the main loop's thread), then close it."""
    status, headers, body = refusal.to_response()
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    payload = (head + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("latin-1") + body
    with channel.outbuf_lock:
        channel.outbufs[-1].append(payload)
        channel.current_outbuf_count += len(payload)
        channel.total_outbufs_len += len(payload)
    channel.request = None
    channel.close_when_flushed = True
