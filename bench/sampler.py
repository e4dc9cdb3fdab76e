"""A wall-clock sampler for a node process (py-spy is not available here): where its threads spend their time.

    python -c "$(python bench/sampler.py --wrapper)" OUT.json -m township_node serve …

runs the program as `python -m` would, with a thread that, while sampling is on,
looks at every other thread's stack every `INTERVAL_S` and counts, for each
thread that is inside this project's code, the innermost project frame
(file:line function): the line that is running, or waiting in a C call it made
(a SQLite commit and its fsync, a lock, a signature check). Threads outside the
project's code (waitress waiting for work) and the main thread's poll loop are
counted as idle.
SIGUSR1 starts sampling (counts reset), SIGUSR2 stops it and writes OUT.json:
{"samples", "busy", "idle", "top": [[where, count], …], "stacks": …}.

Sampling needs the GIL, so a thread busy in Python is seen at the interpreter's
switch interval: the counts are proportions of wall time, not exact.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType

INTERVAL_S = 0.005
IDLE = ("sanji_node/serving.py:61 serve",)  # the main thread's poll loop (waitress reads and writes sockets there)
PROJECT = ("sanji_node", "sanji_domain", "sync_protocol", "township_node", "county_server", "village_agent")


def _where(frame: FrameType) -> str:
    code = frame.f_code
    parts = Path(code.co_filename).parts
    short = "/".join(parts[-2:])
    return f"{short}:{frame.f_lineno} {code.co_name}"


def _in_project(frame: FrameType) -> bool:
    parts = Path(frame.f_code.co_filename).parts
    return len(parts) >= 2 and parts[-2] in PROJECT


class Sampler:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.on = False
        self.samples = 0
        self.idle = 0
        self.top: Counter[str] = Counter()
        self.stacks: Counter[str] = Counter()
        self.t0 = 0.0
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def start(self) -> None:
        signal.signal(signal.SIGUSR1, lambda *_: self.begin())
        signal.signal(signal.SIGUSR2, lambda *_: self.dump())
        self._thread.start()

    def begin(self) -> None:
        self.samples = self.idle = 0
        self.top.clear()
        self.stacks.clear()
        self.t0 = time.perf_counter()
        self.on = True

    def dump(self) -> None:
        self.on = False
        busy = sum(self.top.values())
        data = {
            "seconds": round(time.perf_counter() - self.t0, 3),
            "interval_s": INTERVAL_S,
            "samples": self.samples,
            "busy": busy,
            "idle": self.idle,
            "top": self.top.most_common(40),
            "stacks": self.stacks.most_common(25),
        }
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(self.out)

    def _run(self) -> None:
        me = threading.get_ident()
        while True:
            time.sleep(INTERVAL_S)
            if not self.on:
                continue
            self.samples += 1
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                f: FrameType | None = frame
                inner = None
                chain = []
                while f is not None:
                    if _in_project(f):
                        if inner is None:
                            inner = f
                        if len(chain) < 4:
                            chain.append(_where(f))
                    f = f.f_back
                if inner is None or _where(inner).startswith(IDLE):
                    self.idle += 1
                    continue
                self.top[_where(inner)] += 1
                self.stacks[" < ".join(chain)] += 1


WRAPPER = """
import runpy, sys
sys.path.insert(0, {bench!r})
import sampler
sampler.Sampler(__import__("pathlib").Path(sys.argv[1])).start()
assert sys.argv[2] == "-m"
sys.argv = [sys.argv[3], *sys.argv[4:]]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def wrapper() -> str:
    """The `python -c` program that runs `-m PROGRAM ARGS…` under a sampler writing to argv[1]."""
    return WRAPPER.format(bench=str(Path(__file__).resolve().parent))


if __name__ == "__main__" and sys.argv[1:] == ["--wrapper"]:
    print(wrapper())
