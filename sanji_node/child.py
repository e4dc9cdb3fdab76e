"""What a township and a village have in common as children: enrolment, the sync job, status, bundles."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sanji_domain import pii
from sync_protocol import answers, compression, enrolment, files
from sync_protocol.batches import decode_page
from sync_protocol.errors import AnswerVerificationError, AuthorizationError, KeyFileError, SyncError, TransportError
from sync_protocol.feeds import feed_of
from sync_protocol.http_client import CONNECT_TIMEOUT_S, ParentClient
from sync_protocol.keys import PublicKey, SigningKey
from sync_protocol.sqlite_store import Store
from sync_protocol.transport import Parent
from sync_protocol.verify import Verdict
from sync_protocol.verify_pool import VerifyPool

from . import backup, branch, contacts, fork_reports, purge, resolve, state
from .bundles import write_bundle
from .cli import now_ms
from .config import DataDir, NodeConfig
from .syncer import Progress, SyncReport, record_failure, sync_once

PII_KEY_FILE = "pii.key"


def open_sealer(data: DataDir, config: NodeConfig) -> pii.Sealer | None:
    """The village's personal-data key, unlocked with the agent's passphrase (None if the node has none)."""
    path = data.path / PII_KEY_FILE
    if not path.exists():
        return None
    passphrase = data.passphrase(config)
    if passphrase is None:
        raise KeyFileError(
            "this village's personal data is encrypted but no passphrase is configured",
            hint="set passphrase_env in node.json to the variable that holds the agent's passphrase",
        )
    return pii.open_key_file(path, passphrase.decode("utf-8"))


def enrol(
    data: DataDir,
    *,
    parent_url: str,
    token_text: str,
    expect_role: str,
    passphrase_env: str | None = None,
    fallback_url: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    sync_interval_s: int = 60,
    since: int | None = None,
    connect: Callable[..., Parent] = ParentClient,
) -> tuple[NodeConfig, dict[str, Any]]:
    """Generate this node's key here, prove it to the county through `parent_url`, save the node."""
    token = enrolment.Token.parse(token_text)
    data.create()
    pending = data.path / "node.key.pending"  # kept until enrolment succeeds, so a retry proves the same key
    try:
        passphrase = os.environ.get(passphrase_env, "").encode() if passphrase_env else None
        if expect_role == "village" and not passphrase_env:
            raise KeyFileError(
                "a village laptop must have a passphrase: it encrypts the villagers' personal data at rest",
                hint="set an environment variable to the agent's passphrase and pass its name with --passphrase-env",
            )
        if expect_role == "village" and passphrase is not None and len(passphrase.decode("utf-8")) < pii.MIN_PASSPHRASE:
            raise KeyFileError(
                f"the agent's passphrase needs at least {pii.MIN_PASSPHRASE} characters",
                hint="用一句只有代办员知道的话 (a sentence only the agent knows)",
            )
        if passphrase_env and not passphrase:
            raise AuthorizationError(
                f"${passphrase_env} is empty", hint="set it to the passphrase that will protect this node's key"
            )
        if pending.exists():
            key = SigningKey.from_pem(pending.read_bytes(), passphrase)
        else:
            key = SigningKey.generate()
            files.write_atomic(pending, key.to_pem(passphrase))
        request = enrolment.EnrolRequest.make(token, key)
        client = connect(parent_url, key=None, node_id=token.node, county=token.county)
        answer = client.enroll(enrolment.encode_message(request, since))
        client.close()
        root = PublicKey.from_hex(str(answer.get("root_key", "")))
        if enrolment.fingerprint(root) != token.root_fingerprint or answer.get("county") != token.county:
            raise AuthorizationError(
                "the answer names a different county root key than the token",
                hint="the parent address may be wrong, or something between is not genuine; ask the county",
            )
        # signed by that root for this token and this key: nothing between could have changed a field
        answers.verify_enrol_answer(answer, root, token.token_id, key.public.hex)
        if answer.get("role") != expect_role or answer.get("node") != token.node:
            raise AuthorizationError(
                f"this token enrols a {answer.get('role')}, not a {expect_role}", hint="use the program for that role"
            )
        config = NodeConfig(
            node_id=token.node,
            role=expect_role,
            county=token.county,
            root_node=str(answer["root_node"]),
            root_key=root.hex,
            division=str(answer["division"]),
            parent=str(answer["parent"]),
            parent_url=parent_url.rstrip("/"),
            fallback_url=fallback_url,
            county_name=str(answer.get("county_name", "")),
            host=host,
            port=port,
            sync_interval_s=sync_interval_s,
            passphrase_env=passphrase_env,
            parent_key=str(answer.get("parent_key") or "") or None,
        )
        data.save_key(key, passphrase)
        if expect_role == "village" and passphrase is not None:
            pii.create_key_file(data.path / PII_KEY_FILE, passphrase.decode("utf-8"))
        data.save(config)
        pending.unlink()
    except BaseException:
        for p in (data.key_path, data.config_path, data.path / PII_KEY_FILE):
            if p.exists():
                p.unlink()
        raise
    return config, answer


@dataclass
class ChildNode:
    """A township or a village: its data directory, key and parent link."""

    data: DataDir
    config: NodeConfig
    key: SigningKey
    pool: VerifyPool | None = None
    fold: Callable[..., None] | None = None
    page_bytes: int = 1024 * 1024
    sealer: pii.Sealer | None = None  # a village: entry bodies and personal data sealed at rest
    # how this node reaches a parent: called as ParentClient is (url, key=, node_id=, county=, parent=,
    # parent_key=, and the caller's client options); tests pass the simulated parent's `connect` here
    connect: Callable[..., Parent] = ParentClient

    @classmethod
    def load(cls, data_dir: str | Path, **kw: Any) -> ChildNode:
        data = DataDir(data_dir)
        config = data.load()
        key = data.load_key(config)
        if config.role == "village" and "sealer" not in kw:
            kw["sealer"] = open_sealer(data, config)
        return cls(data, config, key, **kw)

    def open_store(self) -> Store:
        return state.open_store(self.data, self.config, fold=self.fold, sealer=self.sealer)

    def client(
        self, url: str | None = None, parent_id: str | None = None, *, store: Store | None = None, **kw: Any
    ) -> Parent:
        """A client to `parent_id` (default: the parent) at `url`, checking its answers with its key."""
        parent = parent_id or self.config.parent or ""
        kw.setdefault("timeout", (CONNECT_TIMEOUT_S, float(self.config.stall_timeout_s)))
        return self.connect(
            url or self.config.parent_url or "",
            key=self.key,
            node_id=self.config.node_id,
            county=self.config.county,
            parent=parent,
            parent_key=self.parent_key(parent, store),
            **kw,
        )

    def parent_key(self, parent: str, store: Store | None = None) -> PublicKey | None:
        """`parent`'s key: from the membership held here, else from enrolment (a node that holds no
        membership yet), else none (its answers are then refused)."""
        if store is None:
            with self.open_store() as s:
                return self.parent_key(parent, s)
        member = store.directory().get(parent)
        if member is not None:
            return member.key
        if parent == self.config.root_node:
            return PublicKey.from_hex(self.config.root_key)
        if parent == self.config.parent and self.config.parent_key:
            return PublicKey.from_hex(self.config.parent_key)
        return None

    def sync(self, progress: Progress | None = None, **client_kw: Any) -> SyncReport:
        """One session with the parent; with the county as fallback if the parent is down."""
        targets = [(self.config.parent_url, self.config.parent)]
        if self.config.fallback_url:
            targets.append((self.config.fallback_url, self.config.root_node))
        last: SyncError | None = None
        with self.open_store() as store:
            self.report_up(store)
            for url, parent_id in targets:
                if not url or not parent_id:
                    continue
                client = self.client(url, parent_id, store=store, **client_kw)
                try:
                    report = sync_once(
                        store,
                        client,
                        node_id=self.config.node_id,
                        parent_id=parent_id,
                        pool=self.pool,
                        progress=progress,
                        max_page_bytes=self.page_bytes,
                        is_parent=parent_id == self.config.parent,
                    )
                    state.set_state(store, last_parent=parent_id)
                    if resolve.decided_own_forks(store, self.config.node_id) or resolve.pending(store):
                        report = self._take_decision(store, client, parent_id, progress)
                        if not resolve.pending(store) and report.ok:
                            backup.clear_after_decision(self.data, self.config)
                    backup.clear_after_sync(self.data, self.config, now_ms())  # a restored node has now checked
                    if self.config.role == "village":  # the county's receipts may allow purging personal data
                        try:
                            purge.purge_due(store, self.config.node_id, now_ms())
                        except SyncError as e:  # the sync itself succeeded; say why nothing was purged
                            state.set_state(store, purge_error=e.message)
                    return report
                except (TransportError, AnswerVerificationError) as e:
                    # an answer the parent's key does not vouch for changed nothing here: say so, and try the
                    # fallback as when the link is down (something on this link answers in the parent's name)
                    last = e
                    record_failure(store, e, now_ms)
                finally:
                    client.close()
        assert last is not None
        raise last

    def _take_decision(self, store: Store, client: Parent, parent_id: str, progress: Progress | None) -> SyncReport:
        """The county decided a fork of our own feed: set our branch aside, take the canonical one, re-issue."""
        me = self.config.node_id
        for feed in resolve.decided_own_forks(store, me):
            resolve.set_aside(store, me, feed)

        def once() -> SyncReport:
            return sync_once(
                store,
                client,
                node_id=me,
                parent_id=parent_id,
                pool=self.pool,
                progress=progress,
                max_page_bytes=self.page_bytes,
                is_parent=parent_id == self.config.parent,
            )

        report = once()  # pulls the canonical branch: an ordinary continuation now
        if resolve.reissue(store, self.key, self.config.division, now_ms() * 1000):
            report = once()  # pushes the re-issued records
        return report

    def status(self) -> dict[str, Any]:
        with self.open_store() as store:
            s = state.get_state(store)
            acks = state.parent_acks(store)
            vector = store.vector()
            own = {f: seq for f, (seq, _) in vector.items() if f.split("/")[0] == self.config.node_id}
            # receipts count only on this laptop's own branch (a restored laptop may hold other entries there)
            doubtful = branch.doubtful_feeds(store, self.config.node_id)
            county_receipts = branch.receipted_marks(store, self.config.node_id, doubtful)
            held = branch.held_marks(store, self.config.node_id, county_receipts)
            acks = {f: seq for f, seq in acks.items() if f not in own} | held
            stranded = branch.stranded(store, self.config.node_id, held)
            waiting = {f: seq - acks.get(f, 0) for f, seq in own.items() if seq > acks.get(f, 0)}
            up = f"{self.config.node_id}/up"
            cases = [
                {
                    "seq": seq,
                    "case_id": key,
                    "local_no": local_no,
                    "held_by_parent": seq <= acks.get(up, 0),
                    "receipted_by_county": seq <= county_receipts.get(up, 0),
                    "stranded": up in stranded and seq > acks.get(up, 0),
                }
                for seq, key, local_no in store.conn.execute(
                    "SELECT seq, case_id, local_no FROM cases WHERE feed = ? AND origin_case_id IS NULL ORDER BY seq",
                    (up,),
                )
            ]
            return {
                "cases": cases,
                "node": self.config.node_id,
                "role": self.config.role,
                "parent": self.config.parent,
                "parent_url": self.config.parent_url,
                "last_success_ms": int(s.get("last_success_ms") or 0),
                "last_attempt_ms": int(s.get("last_attempt_ms") or 0),
                "last_error": s.get("last_error", ""),
                "waiting_up": sum(waiting.values()),
                "waiting_by_feed": waiting,
                "held_by_parent": acks,
                "receipted_by_county": county_receipts,
                "own_feeds": own,
                "forks": [fork_view(store, f) for f in store.forks()],
                "forked_own_feeds": sorted(doubtful),
                "stranded": stranded,  # own entries past the parent's mark in a forked or frozen own feed
                "stranded_total": sum(stranded.values()),
                "frozen": store.frozen_feeds(),
                "quarantined": len(store.quarantined(waiting_only=True)),
                "restored": backup.restored_mark(self.config),  # restored from a backup: the mark, else None
            }

    def report_up(self, store: Store) -> None:
        """A township's reports to the county, written before it syncs up or writes a bundle for its parent:
        each village's last contact, and the evidence of every fork it found on a village's feed."""
        if self.config.role != "township":
            return
        try:
            contacts.report_contacts(store, self.key, self.config.node_id, now_ms())
            fork_reports.report_forks(store, self.key, self.config.node_id, now_ms())
        except SyncError as e:  # e.g. its own feed frozen: the sync still runs, and says why
            state.set_state(store, contact_report_error=e.message)

    def export_bundle(self, path: Path, *, for_node: str | None = None) -> int:
        """A bundle of what `for_node` (default: the parent) lacks, by what it said it held at the last sync."""
        target = for_node or self.config.parent or ""
        with self.open_store() as store:
            if target == self.config.parent:
                self.report_up(store)
            theirs = _known_vector(store, target, self.config)
            return write_bundle(store, path, key=self.key, source=self.config.node_id, target=target, theirs=theirs)

    def import_bundle(self, path: Path) -> list[Verdict]:
        with files.open_regular(path, "数据包") as f, self.open_store() as store:
            return store.import_bundle(f, name=str(path))


def fork_view(store: Store, f: dict[str, Any]) -> dict[str, Any]:
    """A fork as `status` shows it: whose feed (by name), when found, the entries each branch holds here, and
    whether the evidence went up to the county (a township's report, protocol §8.8)."""
    node = f["feed"].split("/")[0]
    return {
        "feed": f["feed"],
        "node": node,
        "name": store.directory().name_of(node),
        "seq": f["seq"],
        "found_ms": int(f["detected_at"] * 1000),
        "held_seq": store.vector().get(f["feed"], (0, b""))[0],
        "other_last_seq": f["remote_last_seq"],
        "reported": bool(f["reported"]),
        "reason": f["reason"],
        "resolved_seq": f["resolved_seq"],
    }


def _known_vector(store: Store, target: str, config: NodeConfig) -> dict[str, tuple[int, bytes]]:
    """What `target` is known to hold: its acks if it is our parent, its last pull if it is our child."""
    if target != config.parent:
        return state.peer_vector(store, target)
    known = {f: (seq, bytes(h)) for f, seq, h in store.conn.execute("SELECT feed, seq, hash FROM parent_acks")}
    below = {config.node_id, *store.directory().descendants(config.node_id)}
    for feed, (seq, h) in store.vector().items():
        if feed_of(feed).author not in below and seq > known.get(feed, (0, b""))[0]:
            known[feed] = (seq, h)  # it came from above: the parent holds at least as much
    return known


def receipts_for(store: Store, config: NodeConfig) -> dict[str, int]:
    """县级已接收: the county's receipts for this node's feeds, from the feed county/<node>."""
    return branch.receipted_marks(store, config.node_id)


def apply_county_feed(store: Store, answer: dict[str, Any]) -> list[Verdict]:
    """A relay's copy of the county feed pages returned with an enrolment."""
    raw = answer.get("county_feed")
    if not raw:
        return []
    page = compression.decompress(base64.b64decode(raw), store.limits.max_page_bytes)
    return [store.receive(b) for b in decode_page(page)]


def recover_before_writing(node: ChildNode, *, timeout_s: float = 5.0, **client_kw: Any) -> list[str]:
    """Restored-laptop protection: before writing to our own feeds, ask the parent what it holds of them.

    If the parent holds more of a feed this node writes than the node itself
    (a laptop restored from an old backup), sync first so the feed continues
    instead of forking. Offline, there is nothing to ask: the write goes ahead,
    and a fork, if it happens, is caught and quarantined upstream. An answer the
    parent's key does not vouch for counts as offline: nothing is recovered from
    it, and the refusal is kept as the last error. A node restored with `restore`
    (sanji_node.backup) must sync first: unreachable, it refuses.
    """
    from sync_protocol import session

    with node.open_store() as store:
        taking_decision = resolve.pending(store) > 0
    if taking_decision:  # our branch is set aside for the county's decision: re-issue it first, then write
        try:
            node.sync(timeout=(timeout_s, node.config.stall_timeout_s), attempts=1)
        except TransportError as e:
            raise resolve.refusal() from e
    if backup.must_check(node.config):  # restored with `restore`: a whole sync first, or no write at all
        try:
            return node.sync(timeout=(timeout_s, node.config.stall_timeout_s), attempts=1).recovered
        except TransportError as e:
            raise backup.refusal(node.config, f"连不上{backup.PARENT_NAMES.get(node.config.role, '上级')}") from e
    client = node.client(timeout=(timeout_s, timeout_s), attempts=1, **client_kw)
    try:
        with node.open_store() as store:
            directory = store.directory()
            shared = session.shared(node.config.node_id, node.config.parent or "", directory)
            reply = client.hello(session.Hello.of(store.vector(), shared))
            behind = session.must_recover(store.vector(), reply.own)
    except TransportError:
        return []
    except AnswerVerificationError as e:
        with node.open_store() as store:
            record_failure(store, e, now_ms)
        return []
    finally:
        client.close()
    if behind and not node.sync(**client_kw).ok:
        return []  # forked (restored, then written offline): nothing was recovered; the write says why
    return behind
