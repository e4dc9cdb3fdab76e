"""The child's sync session, recovery and fork handling against the simulated parent (issue 12, point 10).

In process, no sockets: real `ChildNode`s over SQLite files in tmp_path, each
parent a `SimParent` answering through the sync API's own route functions, with
signed requests and signed answers checked at both ends (tests/simparent.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sanji_node import resolve, state
from sanji_node.child import ChildNode, recover_before_writing
from sync_protocol.entries import Record
from sync_protocol.errors import AnswerVerificationError, AuthorizationError, SequenceError, TransportError
from sync_protocol.forks import KIND_FORK_RESOLVE, resolution_body
from sync_protocol.transport import HELLO_PATH, PULL_PATH, PUSH_PATH

from .network import seeded_key
from .simparent import SimParent, connect_to, load_copy, make_template, nth, rewrite_hello, truncate
from .test_signed_answers import NOW, local_state

PAGE = 2048  # small pages, so a few dozen entries take several


def clock() -> int:
    return NOW


@dataclass
class Sim:
    tmp: Path
    template: Path  # the data directories as enrolment left them (tests/simparent.node_dir)
    county: ChildNode
    township: ChildNode
    village: ChildNode
    at_county: SimParent
    at_township: SimParent

    def connect(self, node: ChildNode) -> ChildNode:
        node.connect = connect_to({"http://t1.test": self.at_township, "http://county.test": self.at_county})
        return node

    def load(self, source: Path, name: str) -> ChildNode:
        """A node from a copy of the data directory `source` (a backup, a laptop restored, a fresh disk)."""
        return self.connect(load_copy(source.parent, source.name, self.tmp / name, page_bytes=PAGE))

    def copy_village(self, name: str) -> ChildNode:
        """A copy of the village's data directory as it is now (a backup, or the laptop restored from it)."""
        return self.load(self.village.data.path, name)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template(tmp_path_factory.mktemp("sim"))


@pytest.fixture
def sim(tmp_path: Path, template: Path) -> Sim:
    nodes = {n: load_copy(template, n, tmp_path / n, page_bytes=PAGE) for n in ("county", "t1", "v11")}
    county, township, village = nodes["county"], nodes["t1"], nodes["v11"]
    s = Sim(
        tmp_path,
        template,
        county,
        township,
        village,
        SimParent.of(county, clock_ms=clock),
        SimParent.of(township, clock_ms=clock),
    )
    s.connect(village)
    s.connect(township)
    return s


def note(node: ChildNode, n: int, start: int = 1, feed: str = "up", each: bool = False) -> None:
    """`n` entries in one of the node's feeds: one commit, or one commit `each` (a page ends only at a commit)."""
    records = [Record("test.note", f"n{i}", {"i": i, "pad": "x" * 100}, i) for i in range(start, start + n)]
    with node.open_store() as s:
        for chunk in [[r] for r in records] if each else [records]:
            s.append(node.key, f"{node.config.node_id}/{feed}", chunk)


def held(node: ChildNode, feed: str) -> int:
    with node.open_store() as s:
        return s.vector().get(feed, (0, b""))[0]


def paths(parent: SimParent) -> list[str]:
    return [p.rsplit("/", 1)[1] for p, _ in parent.log]


# -- the session --------------------------------------------------------------
def test_a_session_pushes_pulls_and_then_is_a_single_hello(sim: Sim) -> None:
    note(sim.village, 3)
    note(sim.township, 2, feed="*")  # the township's notices for its villages
    report = sim.village.sync()
    assert (report.pushed_entries, report.pulled_entries, report.ok, report.noop) == (3, 2, True, False)
    assert held(sim.township, "v11/up") == 3 and held(sim.village, "t1/*") == 2
    assert paths(sim.at_township) == ["hello", "push", "pull"] and report.requests == 3
    status = sim.village.status()
    assert status["waiting_up"] == 0 and status["held_by_parent"]["v11/up"] == 3
    with sim.township.open_store() as t1:  # the parent's hooks ran: it knows what v11 holds
        assert state.peer_vector(t1, "v11")["v11/up"][0] == 3
        assert t1.conn.execute("SELECT COUNT(*) FROM request_nonces").fetchone()[0] == 3  # each request's, kept
    again = sim.village.sync()
    assert again.noop and again.requests == 1 and paths(sim.at_township)[3:] == ["hello"]
    assert again.summary().startswith("已是最新")


def test_pages_go_up_and_come_down_in_turn(sim: Sim) -> None:
    note(sim.village, 30, each=True)
    note(sim.township, 30, feed="*", each=True)
    report = sim.village.sync()
    pushes, pulls = paths(sim.at_township).count("push"), paths(sim.at_township).count("pull")
    assert pushes > 2 and pulls > 2  # each page within PAGE bytes
    assert (report.pushed_entries, report.pulled_entries) == (30, 30) and report.ok
    assert held(sim.township, "v11/up") == 30 and held(sim.village, "t1/*") == 30


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_push_cut_off_resumes_where_the_parent_is(sim: Sim, when: str) -> None:
    """Cut before the parent sees the second page, or after it applied it (the answer lost): the next session
    sends only what the parent lacks, learnt from its signed hello answer; nothing twice."""
    note(sim.village, 30, each=True)
    setattr(sim.at_township.faults, when, nth(PUSH_PATH, 2))
    with pytest.raises(TransportError, match="cut"):
        sim.village.sync()
    at_cut = held(sim.township, "v11/up")
    assert 0 < at_cut < 30
    acked = sim.village.status()["held_by_parent"]["v11/up"]  # what the village learnt from signed answers
    assert acked == at_cut if when == "before" else 0 < acked < at_cut  # (after: page 2's answer never came)
    sim.at_township.faults.clear()
    report = sim.village.sync()
    assert report.pushed_entries == 30 - at_cut and report.ok
    assert held(sim.township, "v11/up") == 30 and sim.village.status()["waiting_up"] == 0
    with sim.township.open_store() as t1:
        assert t1.conn.execute("SELECT COUNT(*) FROM entries WHERE feed = 'v11/up'").fetchone()[0] == 30


def test_a_pull_cut_off_resumes_after_the_pages_applied(sim: Sim) -> None:
    note(sim.township, 30, feed="*", each=True)
    sim.at_township.faults.after = nth(PULL_PATH, 2)  # the second page is lost on the way down
    with pytest.raises(TransportError):
        sim.village.sync()
    first = held(sim.village, "t1/*")
    assert 0 < first < 30  # the first page is applied and stays
    sim.at_township.faults.clear()
    report = sim.village.sync()
    assert report.pulled_entries == 30 - first and held(sim.village, "t1/*") == 30


def test_a_page_cut_in_the_middle_is_refused_and_nothing_of_it_applied(sim: Sim) -> None:
    note(sim.township, 3, feed="*")
    note(sim.village, 2)
    before = held(sim.village, "t1/*")
    sim.at_township.faults.tamper = truncate(PULL_PATH)
    with pytest.raises(AnswerVerificationError, match="签名验证不通过"):
        sim.village.sync()
    assert held(sim.village, "t1/*") == before == 0
    sim.at_township.faults.clear()
    assert sim.village.sync().pulled_entries == 3


def test_a_refusal_of_the_parent_comes_back_as_its_own_error(sim: Sim) -> None:
    """A node the parent does not have below it is refused (403) with the parent's reason, and no state moves."""
    stranger = sim.load(sim.template / "v21", "v21")  # v21 is below t2
    with pytest.raises(AuthorizationError, match="not below t1"):
        stranger.sync()
    assert paths(sim.at_township) == ["hello"] and sim.at_township.log[0][1] == 403


# -- recovery -----------------------------------------------------------------
def test_a_village_that_lost_its_entries_gets_its_own_feed_back_before_writing(sim: Sim) -> None:
    note(sim.village, 3)
    sim.village.sync()
    empty = sim.load(sim.template / "v11", "new-disk")  # its key and the membership, no entries
    assert held(empty, "v11/up") == 0
    assert recover_before_writing(empty) == ["v11/up"]
    assert held(empty, "v11/up") == 3
    note(empty, 1, start=4)  # the feed continues instead of forking
    report = empty.sync()
    assert report.pushed_entries == 1 and report.ok and held(sim.township, "v11/up") == 4


def test_an_old_copy_recovers_its_tail_in_the_sync_report(sim: Sim) -> None:
    note(sim.village, 1)
    sim.village.sync()
    old = sim.copy_village("old-copy")
    note(sim.village, 2, start=2)
    sim.village.sync()
    report = old.sync()
    assert report.recovered == ["v11/up"] and report.ok and held(old, "v11/up") == 3
    assert "已从上级恢复本机日志" in report.summary()


def test_offline_before_a_write_recovers_nothing_and_lets_the_write_go_on(sim: Sim) -> None:
    note(sim.village, 2)
    sim.village.sync()
    sim.at_township.faults.before = lambda path, n: True
    assert recover_before_writing(sim.village) == []


# -- a lying parent -----------------------------------------------------------
@pytest.mark.parametrize("how", ["the parent's signature kept", "signed by another key", "signed for another nonce"])
def test_inflated_acks_in_hello_are_refused_and_change_nothing(sim: Sim, how: str) -> None:
    """Reproduction (3) through the seam: a hello answer claiming the parent holds 999999 of v11/up."""
    note(sim.village, 2)
    sim.village.sync()
    note(sim.village, 1, start=3)  # an offline entry: waits to go up
    before, waiting = local_state(sim.village), sim.village.status()["waiting_up"]
    who = {"county": "430321", "node": "t1", "to": "v11"}
    sim.at_township.faults.tamper = {
        "the parent's signature kept": rewrite_hello({"v11/up": (999999, bytes(32))}),
        "signed by another key": rewrite_hello({"v11/up": (999999, bytes(32))}, sign_with=seeded_key("v12"), nonce="ab" * 16, **who),
        "signed for another nonce": rewrite_hello({"v11/up": (999999, bytes(32))}, sign_with=sim.township.key, nonce="ab" * 16, **who),
    }[how]  # fmt: skip
    with pytest.raises(AnswerVerificationError, match="本地数据未作任何改动"):
        sim.village.sync()
    assert local_state(sim.village) == before and sim.village.status()["waiting_up"] == waiting == 1
    assert recover_before_writing(sim.village) == []  # a lie before a write recovers nothing either
    assert local_state(sim.village) == before
    sim.at_township.faults.clear()
    assert sim.village.sync().pushed_entries == 1


def test_a_township_out_of_reach_sends_the_village_to_the_county(sim: Sim) -> None:
    sim.village.config.fallback_url = "http://county.test"
    sim.village.connect = connect_to({"http://county.test": sim.at_county})  # nobody answers at t1's address
    note(sim.village, 2)
    report = sim.village.sync()
    assert report.pushed_entries == 2 and held(sim.county, "v11/up") == 2
    sim.village.config.fallback_url = None
    with pytest.raises(TransportError, match=r"cannot reach http://t1\.test"):
        sim.village.sync()
    assert "cannot reach" in sim.village.status()["last_error"]


def test_a_lying_township_sends_the_village_to_the_county(sim: Sim) -> None:
    sim.village.config.fallback_url = "http://county.test"
    note(sim.village, 2)
    sim.at_township.faults.tamper = rewrite_hello({"v11/up": (999999, bytes(32))})
    report = sim.village.sync()
    assert report.pushed_entries == 2 and held(sim.county, "v11/up") == 2 and held(sim.township, "v11/up") == 0
    with sim.village.open_store() as s:
        assert state.get_state(s)["last_parent"] == "county" and "v11/up" not in state.parent_acks(s)


# -- a restored laptop's fork, from detection to the county's decision ---------
def event(case_id: str, n: int) -> dict[str, Any]:
    return {"action": "submit", "at_ms": 1_000 + n, "case_id": case_id, "n": n}


def events(node: ChildNode, *names: str, hlc: int) -> None:
    with node.open_store() as s:
        records = [Record("case.event", c, event(c, ord(c)), hlc + i) for i, c in enumerate(names)]  # same content
        s.append(node.key, "v11/up", records)


def fork(sim: Sim, written: str) -> tuple[ChildNode, int]:
    """v11 wrote "a", was copied, wrote on (`written`) and synced up to the county; the copy (the laptop
    restored from it) then filed "b" again and "x" offline. Returns the copy and the canonical head."""
    events(sim.village, "a", hlc=10)
    sim.village.sync()
    restored = sim.copy_village("backup")  # the backup: v11/up holds "a"
    events(sim.village, *written, hlc=11)
    assert sim.village.sync().ok and sim.township.sync().ok  # "a" and `written` at the township and the county
    events(restored, "b", "x", hlc=20)
    return restored, 1 + len(written)


def decide(sim: Sim) -> None:
    """The county's decision (`county-server resolve-fork`): its copy of v11/up is the canonical branch."""
    with sim.county.open_store() as c:
        seq, digest = c.vector()["v11/up"]
        body = resolution_body("v11", "v11/up", seq, digest, "笔记本从旧备份恢复")
        c.append(sim.county.key, "county/v11", [Record(KIND_FORK_RESOLVE, "v11/up", body, 30)])


@pytest.mark.parametrize(
    ("written", "found"),
    [
        ("bc", "on push"),  # the parent holds as many entries as the copy, another 3rd: the push shows the fork
        ("bcde", "on pull"),  # the parent holds more: the pull brings the other branch, the copy sends its own
    ],
)
def test_a_restored_laptop_forks_is_frozen_and_takes_the_county_decision(sim: Sim, written: str, found: str) -> None:
    restored, canonical = fork(sim, written)
    start = len(sim.at_township.log)
    report = restored.sync()
    assert paths(sim.at_township)[start:] == {"on push": ["hello", "push", "pull"], "on pull": ["hello", "pull", "push"]}[found]  # fmt: skip
    assert report.forked == ["v11/up"] and not report.ok and report.stranded == 2
    assert "分叉" in report.problem()
    with sim.township.open_store() as t1:
        assert "v11/up" in t1.frozen_feeds() and [f["feed"] for f in t1.forks()] == ["v11/up"]
        assert held(sim.township, "v11/up") == canonical  # the other branch is kept as evidence, not applied
    status = restored.status()
    assert status["forked_own_feeds"] == ["v11/up"] and status["stranded_total"] == 2

    # the township reports the fork when it next syncs up; the county records it with the evidence
    assert sim.township.sync().ok
    with sim.county.open_store() as c:
        (found_at_county,) = [f for f in c.forks() if f["feed"] == "v11/up"]
        assert found_at_county["reported_by"] == "t1" and found_at_county["resolved_seq"] is None
    decide(sim)

    # the decision comes down: the township lifts the freeze, the laptop sets its branch aside, takes the
    # canonical one and re-issues what it lacks ("x"; "b" is there already), which the next push takes up
    assert sim.township.sync().ok
    with sim.township.open_store() as t1:
        assert t1.frozen_feeds() == {}
    report = restored.sync()
    assert report.ok and report.stranded == 0
    with restored.open_store() as s:
        assert resolve.pending(s) == 0 and s.frozen_feeds() == {}
        stash = {r["key"]: (r["skipped"], r["reissued_seq"]) for r in resolve.stash_view(s)}
        assert stash == {"b": (1, None), "x": (0, canonical + 1)}
    with sim.township.open_store() as t1:
        (entry,) = t1.entries("v11/up", canonical + 1)
        assert held(sim.township, "v11/up") == canonical + 1 and entry.key == "x" and entry.value["reissue_of"]
    assert restored.status()["forked_own_feeds"] == [] and restored.status()["waiting_up"] == 0
    assert restored.sync().noop  # settled


def test_a_decision_half_taken_refuses_writes_until_a_sync_completes_it(sim: Sim) -> None:
    """The link drops after the laptop set its branch aside, before the re-issue: a write is refused (in
    Chinese, with what to do) while the parent is out of reach, and goes ahead once a sync re-issued."""
    restored, canonical = fork(sim, "bc")
    restored.sync()
    sim.township.sync()
    decide(sim)
    sim.township.sync()
    hellos = sim.at_township.counts[HELLO_PATH]
    sim.at_township.faults.before = lambda path, n: path == HELLO_PATH and n > hellos + 1  # the decision's own sync
    with pytest.raises(TransportError):
        restored.sync()
    with restored.open_store() as s:
        assert resolve.pending(s) == 2 and held(restored, "v11/up") == 1  # "b" and "x" set aside, not re-issued
    with pytest.raises(SequenceError, match="分叉裁决") as refused:
        recover_before_writing(restored)
    assert refused.value.hint and "sync" in refused.value.hint
    sim.at_township.faults.clear()
    assert recover_before_writing(restored) == []
    with restored.open_store() as s:
        assert resolve.pending(s) == 0
    assert held(sim.township, "v11/up") == canonical + 1


# -- enrolment ----------------------------------------------------------------
def test_a_new_township_enrols_and_syncs_through_the_seam(sim: Sim) -> None:
    """`child.enrol` with the simulated county as its `connect`: the county's enrol hook redeems the token and
    signs the answer with the root key, the new node checks it, then makes its first sync."""
    from county_server import tokens
    from county_server.app import create_app as county_app
    from sanji_node.child import enrol
    from sanji_node.config import DataDir

    app = county_app(sim.county.data.path, clock_ms=clock)
    at_county = SimParent(app.extensions["sanji_sync"])
    with sim.county.open_store() as c:
        issued = tokens.issue(c, role="township", division="430321103000", parent="county", node="t3", now_ms=NOW,
                              ttl_ms=3_600_000, random_bytes=bytes(range(21)))  # fmt: skip
    config, answer = enrol(DataDir(sim.tmp / "t3"), parent_url="http://county.test", token_text=str(issued.token),
                           expect_role="township", connect=at_county.connect)  # fmt: skip
    assert (config.node_id, config.parent, answer["role"]) == ("t3", "county", "township")
    assert paths(at_county) == ["enroll"]
    t3 = ChildNode.load(sim.tmp / "t3", connect=at_county.connect)
    report = t3.sync()
    assert report.ok and report.pulled_entries > 0
    with t3.open_store() as s:
        assert s.directory().get("t3") is not None  # its own membership came down
    with pytest.raises(AuthorizationError, match="already been used"):  # the token is spent
        enrol(DataDir(sim.tmp / "t3-again"), parent_url="http://county.test", token_text=str(issued.token),
              expect_role="township", connect=at_county.connect)  # fmt: skip
