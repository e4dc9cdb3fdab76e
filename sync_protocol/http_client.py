"""The child's side of the sync API: a `requests.Session` to the parent.

An I/O adapter. Keep-alive, timeouts that measure progress (below), and retries with backoff for
failures of the link (a fresh signature and nonce on every attempt, so a
retry is never mistaken for a replay), each addressed to the parent by node id.
The parent's answers are acted on only once its signature over them, bound to
the request's nonce, verifies with its key (`answers`). Errors come back as the
protocol's own classes: every failure of `requests` and every 5xx answer (a
busy database answers 503 with `Retry-After`, which is honoured up to a
minute) is `TransportError`, "retry later"; anything else is the parent saying
no, with its code and message.

Timeouts measure progress, never a whole body (issue 12, point 8). `timeout` is
(connect_s, stall_s): the TCP handshake must finish within connect_s; after it,
every step must move bytes within stall_s: each 16 KiB block of a request body
handed to the socket (the body goes as a stream of blocks, and the socket's
timeout is raised to stall_s once connected, by `ProgressAdapter`: urllib3
would otherwise send the whole body under the connect timeout, and CPython's
`sendall` counts its timeout for the whole call), and each read of the answer.
So a slow link that moves a block every few seconds never times out, and a
link that went silent is noticed within stall_s (plus the block being sent).
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from . import compression, errors, session
from .answers import verify_answer
from .auth import H_NONCE, sign_request
from .keys import PublicKey, SigningKey
from .limits import DEFAULT_LIMITS, Limits
from .planning import Vector
from .transport import ENROLL_PATH, HEALTH_PATH, HELLO_PATH, MORE_HEADER, PULL_PATH, PUSH_PATH, error_from_answer

CONNECT_TIMEOUT_S = 5.0
STALL_TIMEOUT_S = 30.0  # no byte moved for this long: the link is gone (node.json `stall_timeout_s`)
RETRY_STATUSES = frozenset(range(500, 600))  # the parent (or a proxy) failed or is busy: retry later, then the fallback
MAX_RETRY_AFTER_S = 60.0


def retry_after(resp: requests.Response) -> float:
    """The parent's Retry-After in seconds (0 if absent or not a number), at most a minute."""
    value = resp.headers.get("Retry-After", "")
    return min(float(value), MAX_RETRY_AFTER_S) if value.isascii() and value.isdigit() else 0.0


def error_from_response(resp: requests.Response) -> errors.SyncError:
    try:
        return error_from_answer(resp.json(), resp.reason)
    except (ValueError, AttributeError):
        return errors.SyncError(f"the parent answered HTTP {resp.status_code} {resp.reason}")


class _ProgressSend:
    """Connects within the connect timeout, then sends with the stall timeout (per block, see the module doc)."""

    stall_s: float = STALL_TIMEOUT_S
    sock: Any
    timeout: Any

    def request(self, method: str, url: str, body: Any = None, headers: Any = None, **kw: Any) -> None:
        if self.sock is None:
            self.connect()  # type: ignore[attr-defined]  # under self.timeout: the pool set the connect timeout
        self.timeout = self.stall_s
        super().request(method, url, body=body, headers=headers, **kw)  # type: ignore[misc]


class ProgressAdapter(HTTPAdapter):
    """A `requests` adapter whose connections send under the stall timeout, not the connect one."""

    def __init__(self, stall_s: float, **kw: Any) -> None:
        self.stall_s = stall_s
        super().__init__(**kw)

    def init_poolmanager(self, *args: Any, **kw: Any) -> None:
        super().init_poolmanager(*args, **kw)
        classes = dict(self.poolmanager.pool_classes_by_scheme)
        for scheme, pool_cls, conn_cls in (
            ("http", HTTPConnectionPool, HTTPConnection),
            ("https", HTTPSConnectionPool, HTTPSConnection),
        ):
            conn = type(f"Progress{conn_cls.__name__}", (_ProgressSend, conn_cls), {"stall_s": self.stall_s})
            classes[scheme] = type(f"Progress{pool_cls.__name__}", (pool_cls,), {"ConnectionCls": conn})
        self.poolmanager.pool_classes_by_scheme = classes


class _Body(io.BytesIO):
    """A request body read in blocks (so each block's send has its own timeout); `on_sent` once all is read."""

    def __init__(self, data: bytes, on_sent: Callable[[], None] | None) -> None:
        super().__init__(data)
        self.on_sent = on_sent

    def read(self, size: int | None = -1) -> bytes:
        block = super().read(size)
        if not block and self.on_sent is not None:
            self.on_sent()
        return block


class ParentClient:
    """Signed requests from one node to its parent (or its fallback parent): `transport.Parent` over HTTP."""

    def __init__(
        self,
        base_url: str,
        *,
        key: SigningKey | None,
        node_id: str,
        county: str,
        parent: str | None = None,
        parent_key: PublicKey | None = None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        random_bytes: Callable[[int], bytes] = os.urandom,
        sleep: Callable[[float], None] = time.sleep,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT_S, STALL_TIMEOUT_S),  # connect_s, stall_s
        attempts: int = 3,
        backoff: float = 0.5,
        limits: Limits = DEFAULT_LIMITS,
        http: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.key, self.node_id, self.county = key, node_id, county
        self.parent, self.parent_key = parent, parent_key  # whom the requests are for, and its key for the answers
        self.clock_ms, self.random_bytes, self.sleep = clock_ms, random_bytes, sleep
        self.timeout, self.attempts, self.backoff = timeout, attempts, backoff
        self.limits = limits
        if http is None:
            http = requests.Session()
            adapter = ProgressAdapter(timeout[1])
            http.mount("http://", adapter)
            http.mount("https://", adapter)
        self.http = http
        self.http.headers["User-Agent"] = "sanji-sync/1"
        self._count = threading.Lock()  # pages are pushed from two threads (sanji_node.syncer)
        self.requests = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    def close(self) -> None:
        self.http.close()

    def forget_connections(self) -> None:
        """Close the idle kept-alive connections. Called when an exchange failed on the link: a link that
        dropped one connection (a 4G cell re-attached, a NAT that forgot its table) has dropped the others
        open on it too, and each would otherwise cost a stall timeout of its own before it is found dead.
        A connection in use by another thread is left to finish (or fail) on its own."""
        for adapter in self.http.adapters.values():
            adapter.close()  # clears the pool manager; it opens fresh pools on the next request

    def _send(
        self,
        method: str,
        path: str,
        data: bytes | None,
        headers: dict[str, str],
        on_sent: Callable[[], None] | None = None,
    ) -> requests.Response:
        """One HTTP exchange, as python-tuf's `FetcherInterface.fetch` does it: every failure of `requests` comes
        back in the error tree: a URL that can never work as `ProtocolError`, anything else as `TransportError`."""
        try:
            with self._count:
                self.requests += 1
                self.bytes_sent += len(data or b"")
            body = None if data is None else _Body(data, on_sent)
            resp = self.http.request(method, self.base_url + path, data=body, headers=headers, timeout=self.timeout)
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema,
        ) as e:
            raise errors.ProtocolError(
                f"上级地址 {self.base_url} 不对 (bad parent URL: {e})",
                hint="检查 node.json 里的上级地址，如 http://10.0.0.5:8410",
            ) from e
        except (requests.RequestException, OSError, ValueError) as e:  # link, timeout, cut mid-body, bad encoding
            raise errors.TransportError(
                f"cannot reach {self.base_url}: {type(e).__name__}: {e}", hint="the link is down; sync will retry later"
            ) from e
        with self._count:
            self.bytes_received += len(resp.content)
        return resp

    def _post(
        self,
        path: str,
        data: bytes,
        *,
        signed: bool = True,
        headers: dict[str, str] | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> requests.Response:
        last: errors.SyncError | None = None
        for attempt in range(self.attempts):
            h = dict(headers or {})
            if signed:
                if self.key is None or self.parent is None:
                    raise errors.KeyFileError("this node has no key yet", hint="run init first")
                h.update(
                    sign_request(
                        self.key,
                        county=self.county,
                        node=self.node_id,
                        to=self.parent,
                        method="POST",
                        path=path,
                        body=data,
                        now_ms=self.clock_ms(),
                        nonce=self.random_bytes(16),
                    )
                )
            wait = self.backoff * (2**attempt)
            try:
                resp = self._send("POST", path, data, h, on_sent)
            except errors.TransportError as e:
                last = e
                self.forget_connections()  # the retry goes on a fresh connection
            else:
                if resp.status_code < 400:
                    return resp
                if resp.status_code not in RETRY_STATUSES:
                    raise error_from_response(resp)
                last = error_from_response(resp)
                wait = max(wait, retry_after(resp))
            if attempt + 1 < self.attempts:
                self.sleep(wait)
        said = last.message if last is not None else ""
        raise errors.TransportError(
            said if said.startswith("cannot reach") else f"cannot reach {self.base_url}: {said}",
            hint="the link is down or the parent is busy; sync will retry later",
        ) from last

    def _get(self, path: str) -> requests.Response:
        resp = self._send("GET", path, None, {})
        if resp.status_code in RETRY_STATUSES:
            raise errors.TransportError(f"{self.base_url} is busy: {error_from_response(resp)}", hint="retry later")
        if resp.status_code >= 400:
            raise error_from_response(resp)
        return resp

    # -- the session --------------------------------------------------------
    def health(self) -> dict[str, Any]:
        data: dict[str, Any] = self._get(HEALTH_PATH).json()
        return data

    def enroll(self, request_body: bytes) -> dict[str, Any]:
        data: dict[str, Any] = self._post(ENROLL_PATH, request_body, signed=False).json()
        return data

    def _verified(self, resp: requests.Response, path: str) -> bytes:
        """The answer's body, once the parent's signature over it and this request's nonce verifies."""
        sent = resp.request.headers if resp.request is not None else {}
        verify_answer(
            resp.headers,
            parent_key=self.parent_key,
            county=self.county,
            parent=self.parent or "",
            to=self.node_id,
            nonce=str(sent.get(H_NONCE, "")),
            path=path,
            body=resp.content,
        )
        return resp.content

    def hello(self, hello: session.Hello) -> session.HelloReply:
        path = HELLO_PATH
        return session.HelloReply.decode(self._verified(self._post(path, hello.encode()), path))

    def push(self, page: bytes, on_sent: Callable[[], None] | None = None) -> session.PushReply:
        """Push one page; `on_sent` is called when its body has been handed to the socket (each attempt)."""
        body = compression.compress(page)
        path = PUSH_PATH
        resp = self._post(path, body, headers={compression.HEADER: compression.ENCODING}, on_sent=on_sent)
        return session.PushReply.decode(self._verified(resp, path))

    def pull(self, vector: Vector, max_bytes: int) -> tuple[bytes, bool]:
        path = PULL_PATH
        resp = self._post(path, session.PullRequest(vector, max_bytes).encode())
        data = self._verified(resp, path)
        if resp.headers.get(compression.HEADER) == compression.ENCODING:
            data = compression.decompress(data, self.limits.max_page_bytes)
        return data, resp.headers.get(MORE_HEADER) == "1"
