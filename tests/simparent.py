"""An in-process simulated parent: the real sync API over a real store, reached without HTTP.

As python-tuf's `RepositorySimulator` stands in for the repository behind its
fetcher, `SimParent` stands in for a township or the county behind the
`transport.Parent` seam. It answers through the very functions the Flask
routes run (`sync_protocol.routes`) with the context a parent program builds
(`sanji_node.parent.parent_context`: contacts, what each child holds, resent
pages), over the node's SQLite file. `SimLink` is the child's end: it signs
every request with the child's key for the parent (recipient, time, nonce:
the parent verifies them and keeps the nonces), and checks every answer's
signature with the parent's key before it reads it, as `ParentClient` does.
So a session run through it exercises the child's session, the parent's
routes and both ends' checks; only HTTP is left out (tests/test_sync_routes.py
covers the routes through Flask's test client, tests/e2e the real processes).

Faults are injected on the link (`Faults`): cut before the parent sees a
request, lose its answer after the parent handled it, or rewrite the answer
(a proxy that lies). A cut is `TransportError`, as on a real link after
`ParentClient` gave up retrying. Use it with `ChildNode(connect=...)`:

    county = SimParent.of(county_node, clock_ms=clock)
    township.connect = county.connect            # every call of township.client(...) now reaches `county`
    village.connect = connect_to({"http://t1.test": t1, "http://county.test": county})  # by URL: fallbacks
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sanji_node.child import ChildNode
from sanji_node.config import DataDir, NodeConfig
from sanji_node.parent import parent_context
from sync_protocol import canonical, compression, session
from sync_protocol.answers import H_ANSWER, sign_answer, verify_answer
from sync_protocol.auth import H_NONCE, sign_request
from sync_protocol.batches import encode_page
from sync_protocol.errors import KeyFileError, TransportError
from sync_protocol.keys import PublicKey, SigningKey
from sync_protocol.limits import DEFAULT_LIMITS, Limits
from sync_protocol.planning import Vector
from sync_protocol.routes import Answer, Request, SyncContext, answer
from sync_protocol.transport import (
    ENROLL_PATH,
    HELLO_PATH,
    MORE_HEADER,
    PULL_PATH,
    PUSH_PATH,
    Parent,
    error_from_answer,
)

from .network import Network, build_network

Tamper = Callable[[str, Answer], Answer]
Cut = Callable[[str, int], bool]  # (path, how many requests on this path so far, this one included) → cut?


@dataclass
class Faults:
    """What goes wrong on the simulated link. Each hook sees the path and the count of requests on it."""

    before: Cut | None = None  # the link drops before the parent sees the request: nothing happens there
    after: Cut | None = None  # the parent handled the request; its answer is lost on the way back
    tamper: Tamper | None = None  # something on the link rewrites the answer

    def clear(self) -> None:
        self.before = self.after = self.tamper = None


def nth(path: str, n: int) -> Cut:
    """Cut the `n`-th request on `path` (counted from 1)."""
    return lambda p, count: p == path and count == n


@dataclass
class SimParent:
    """A parent node in process: `routes.answer` under its context, with injected faults and a request log."""

    ctx: SyncContext
    faults: Faults = field(default_factory=Faults)
    counts: Counter[str] = field(default_factory=Counter)  # requests per path that reached the link
    log: list[tuple[str, int]] = field(default_factory=list)  # (path, status) of every answer the parent gave

    @classmethod
    def of(cls, node: ChildNode, *, clock_ms: Callable[[], int], **context: Any) -> SimParent:
        """The parent `node` (a township or the county's data directory) as its program serves it."""
        ctx = parent_context(
            node_id=node.config.node_id,
            role=node.config.role,
            open_store=node.open_store,
            key=node.key,
            clock_ms=clock_ms,
            pool=node.pool,
            **context,
        )
        return cls(ctx)

    def exchange(self, req: Request) -> Answer:
        self.counts[req.path] += 1
        n = self.counts[req.path]
        if self.faults.before is not None and self.faults.before(req.path, n):
            raise TransportError(f"the simulated link is cut before {req.path} #{n}", hint="retry later")
        got = answer(self.ctx, req)
        self.log.append((req.path, got.status))
        if self.faults.after is not None and self.faults.after(req.path, n):
            raise TransportError(f"the simulated link is cut after {req.path} #{n} was handled", hint="retry later")
        return got if self.faults.tamper is None else self.faults.tamper(req.path, got)

    def connect(
        self,
        url: str = "",
        *,
        key: SigningKey | None,
        node_id: str,
        county: str,
        parent: str | None = None,
        parent_key: PublicKey | None = None,
        clock_ms: Callable[[], int] | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
        limits: Limits = DEFAULT_LIMITS,
        **_http: Any,  # the HTTP client's own options (timeouts, attempts, session) mean nothing here
    ) -> SimLink:
        """A link to this parent, called as `ParentClient` is (so it fits `ChildNode.connect`)."""
        return SimLink(
            self,
            key=key,
            node_id=node_id,
            county=county,
            parent=parent,
            parent_key=parent_key,
            clock_ms=clock_ms or self.ctx.clock_ms,
            random_bytes=random_bytes,
            limits=limits,
        )


def connect_to(parents: Mapping[str, SimParent]) -> Callable[..., Parent]:
    """A `ChildNode.connect` that reaches the simulated parent at each URL; at any other URL nobody answers."""

    def connect(url: str, **kw: Any) -> Parent:
        return parents[url].connect(url, **kw) if url in parents else Unreachable(url)

    return connect


@dataclass
class Unreachable:
    """A parent that never answers: every call is `TransportError`."""

    url: str
    requests: int = 0

    def _down(self, *_args: Any) -> Any:
        self.requests += 1
        raise TransportError(f"cannot reach {self.url}", hint="the link is down; sync will retry later")

    enroll = hello = push = pull = _down

    def close(self) -> None:
        pass


@dataclass
class SimLink:
    """The child's end of a simulated link: a `transport.Parent`."""

    server: SimParent
    key: SigningKey | None
    node_id: str
    county: str
    parent: str | None
    parent_key: PublicKey | None
    clock_ms: Callable[[], int]
    random_bytes: Callable[[int], bytes]
    limits: Limits
    requests: int = 0

    def close(self) -> None:
        pass

    def _post(self, path: str, body: bytes, *, signed: bool = True, headers: dict[str, str] | None = None) -> Answer:
        h = dict(headers or {})
        if signed:
            if self.key is None or self.parent is None:
                raise KeyFileError("this node has no key yet", hint="run init first")
            h.update(
                sign_request(self.key, county=self.county, node=self.node_id, to=self.parent, method="POST",
                             path=path, body=body, now_ms=self.clock_ms(), nonce=self.random_bytes(16))
            )  # fmt: skip
        self.requests += 1
        got = self.server.exchange(Request("POST", path, h, body))
        if got.status >= 500:  # busy or failed: what ParentClient raises once its retries are spent
            raise TransportError(f"the parent answered {got.status}: {got.body[:200]!r}", hint="retry later")
        if got.status >= 400:
            raise error_from_answer(json.loads(got.body), f"HTTP {got.status}")
        if signed:
            verify_answer(got.headers, parent_key=self.parent_key, county=self.county, parent=self.parent or "",
                          to=self.node_id, nonce=h[H_NONCE], path=path, body=got.body)  # fmt: skip
        return got

    def enroll(self, request_body: bytes) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self._post(ENROLL_PATH, request_body, signed=False).body)
        return data

    def hello(self, hello: session.Hello) -> session.HelloReply:
        return session.HelloReply.decode(self._post(HELLO_PATH, hello.encode()).body)

    def push(self, page: bytes, on_sent: Callable[[], None] | None = None) -> session.PushReply:
        if on_sent is not None:
            on_sent()  # in-process, the body has left at once
        got = self._post(PUSH_PATH, compression.compress(page), headers={compression.HEADER: compression.ENCODING})
        return session.PushReply.decode(got.body)

    def pull(self, vector: Vector, max_bytes: int) -> tuple[bytes, bool]:
        got = self._post(PULL_PATH, session.PullRequest(vector, max_bytes).encode())
        data = got.body
        if got.headers.get(compression.HEADER) == compression.ENCODING:
            data = compression.decompress(data, self.limits.max_page_bytes)
        return data, got.headers.get(MORE_HEADER) == "1"


# -- lies on the link ---------------------------------------------------------
def rewrite_hello(own: Mapping[str, tuple[int, bytes]], *, sign_with: SigningKey | None = None, **who: str) -> Tamper:
    """A proxy that rewrites the hello answer's `own` (what the parent says it holds of the child's feeds).
    Unsigned again it keeps the parent's signature (which then no longer verifies); `sign_with` signs the lie
    anew, with `who` naming county, node, to and nonce (a key that is not the parent's, or a stale nonce)."""

    def tamper(path: str, got: Answer) -> Answer:
        if path != HELLO_PATH or got.status != 200:
            return got
        msg = canonical.decode(got.body)
        msg["own"] = {f: [seq, h.hex()] for f, (seq, h) in own.items()}
        body = canonical.encode(msg)
        headers = dict(got.headers)
        if sign_with is not None:
            headers[H_ANSWER] = sign_answer(sign_with, path=path, body=body, headers=headers, **who)
        return Answer(body, got.status, got.mimetype, headers)

    return tamper


def truncate(path: str) -> Tamper:
    """An answer on `path` that arrives cut in the middle (as a link that drops mid-body, undetected)."""
    return lambda p, got: (
        Answer(got.body[: len(got.body) // 2], got.status, got.mimetype, got.headers) if p == path else got
    )


# -- nodes on disk ------------------------------------------------------------
def node_dir(tmp: Path, net: Network, node_id: str, *, role: str, parent: str | None) -> ChildNode:
    """A node's data directory holding the membership (the county feed), as enrolment and a first sync leave it;
    its key is the network's seeded key."""
    n = net.nodes[node_id]
    data = DataDir(tmp / node_id)
    data.path.mkdir(parents=True)
    config = NodeConfig(
        node_id=node_id,
        role=role,
        county="430321",
        root_node="county",
        root_key=net.county.key.public.hex,
        division=n.division,
        parent=parent,
        parent_url=f"http://{parent}.test" if parent else None,
    )
    data.save(config)
    data.save_key(n.key, None)
    node = ChildNode(data, config, n.key)
    with node.open_store() as s:
        for page in net.county.store.plan({}, lambda f: f == "county/*"):
            s.receive_page(encode_page([net.county.store.read_batch(r) for r in page]))
    return node


TEMPLATE_NODES = (
    ("county", "county", None),
    ("t1", "township", "county"),
    ("v11", "village", "t1"),
    ("v21", "village", "t1"),
)  # fmt: skip  (v21 is below t2: a stranger at t1)


def make_template(root: Path) -> Path:
    """Data directories of county, t1, v11 and v21 holding the membership, under `root/nodes`: make them once
    per module and copy one per test (SQLite files are cheap to copy and slow to create)."""
    net = build_network(root / "net", townships=2, villages_per_township=1)
    for node, role, parent in TEMPLATE_NODES:
        node_dir(root / "nodes", net, node, role=role, parent=parent).open_store().close()
    net.close()
    return root / "nodes"


def load_copy(template: Path, node: str, dest: Path, **kw: Any) -> ChildNode:
    """The node `node` of the template, from a copy of its data directory at `dest`."""
    return ChildNode.load(shutil.copytree(template / node, dest), **kw)
