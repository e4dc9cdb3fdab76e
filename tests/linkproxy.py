"""A shaping, fault-injecting TCP proxy for slow and hostile links (issue 12, points 8 and 11).

    with LinkProxy("127.0.0.1", port, Shape(up_bps=16_000, down_bps=16_000, latency_s=0.3, sock_buf=8192)) as p:
        ... point the child at p.url ...
        p.cut_after("down", 20_000)     # the next exchange is reset after 20,000 reply bytes
        p.drop_after("up", 10_000)      # ... or silently stops forwarding (sockets stay open)

An asyncio server in a thread of its own; one upstream connection per accepted
connection. The link is modelled per direction as a shared serial line: a chunk
read from one side occupies the direction's line for `len / bps` seconds (all
connections share it, as they share one 4G modem), then arrives `latency_s`
later. The reader waits while its chunk is "on the line", so a sender sees the
back-pressure of a slow link, not a proxy that swallows everything at loopback
speed. `sock_buf` sets small SO_SNDBUF/SO_RCVBUF on both sides, and the stream
readers hold at most 2 × `chunk` (asyncio's default would read ahead 128 KiB
and hide the link's back-pressure from the sender).

Faults:
- `cut_after(direction, n, reset=True)`: once `n` more bytes have crossed in
  `direction` (on any connection), the connection carrying the n-th byte is
  closed on both sides (RST, or FIN with reset=False), in the middle of a body;
- `drop_after(direction, n)`: the same, but the connection silently stops
  forwarding and reading, both sockets stay open (a dead 4G cell);
- `stall(seconds)`: nothing is forwarded for a while, then everything resumes;
- `outage(period_s, down_s, mode)`: the link is down `down_s` in every
  `period_s` (mode "reset": open connections are reset and new ones refused;
  "silent": open connections go silent for good, as after a 4G cell's
  re-attach, and new ones are held until the link is back, as TCP resends a
  lost SYN until it gets through).

Figures: bytes forwarded each way, the bytes of each interrupted exchange
(request and reply bytes moved on that connection since its current exchange
began: what the retry must move again), and the longest time no byte was
forwarded while a connection was open, less the time the link was deliberately
down (`worst_gap_s`); and each gap over `long_gap_s` (2 s) with when it ended, which
way the next byte went, and how many connections were open and silent then
(`long_gaps`, the last 20: what to read when a stall goal fails).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

UP, DOWN = "up", "down"  # up: client → server (a push body); down: server → client (a pull reply)


@dataclass
class Shape:
    latency_s: float = 0.0  # one way
    up_bps: float | None = None  # bytes per second, None: unlimited
    down_bps: float | None = None
    sock_buf: int | None = None  # SO_SNDBUF / SO_RCVBUF on both sockets, bytes
    chunk: int = 4096  # the most read at once


@dataclass
class Fault:
    kind: str  # "cut" | "reset" | "drop"
    direction: str
    at: int  # the proxy's byte count in `direction` at which it strikes


@dataclass
class _Conn:
    client_w: asyncio.StreamWriter
    upstream_w: asyncio.StreamWriter | None = None
    silent: bool = False
    closed: bool = False
    moved: dict[str, int] = field(default_factory=lambda: {UP: 0, DOWN: 0})
    exchange: dict[str, int] = field(default_factory=lambda: {UP: 0, DOWN: 0})
    fault: Fault | None = None  # strikes once the chunk being written is through


def _small_buffers(sock: socket.socket, size: int | None) -> None:
    if size:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def _abort(w: asyncio.StreamWriter | None, reset: bool) -> None:
    if w is None:
        return
    sock = w.get_extra_info("socket")
    if reset and sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if reset:
        w.transport.abort()
    else:
        w.close()


class LinkProxy:
    """127.0.0.1:<port> → target, shaped and faulted as told. Thread-safe controls."""

    def __init__(self, target_host: str, target_port: int, shape: Shape | None = None) -> None:
        self.target = (target_host, target_port)
        self.shape = shape or Shape()
        self.loop = asyncio.new_event_loop()
        self.conns: list[_Conn] = []
        self.moved = {UP: 0, DOWN: 0}
        self.interrupted: list[int] = []  # bytes of each interrupted exchange
        self.faults: list[Fault] = []
        self.connections = 0
        self.down = False
        self.down_mode = "reset"
        self._line_free = {UP: 0.0, DOWN: 0.0}
        self._paused_until = 0.0
        self._last_byte: float | None = None  # None: no connection open, so no gap is counted
        self._down_since = 0.0
        self._down_total = 0.0  # seconds the link was deliberately down: not a stall
        self._down_at_last_byte = 0.0
        self.worst_gap_s = 0.0
        self.long_gaps: list[dict[str, Any]] = []  # gaps over `long_gap_s`, with what the link was doing
        self.long_gap_s = 2.0
        self._t0 = time.monotonic()
        self._outage: asyncio.Task[None] | None = None
        self._server: asyncio.base_events.Server | None = None
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="linkproxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        self.port: int = self._server.sockets[0].getsockname()[1] if self._server else 0

    @classmethod
    def to_url(cls, url: str, shape: Shape | None = None) -> LinkProxy:
        host, port = url.split("://", 1)[-1].rstrip("/").rsplit(":", 1)
        return cls(host, int(port), shape)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- controls (from any thread) ---------------------------------------
    def _call(self, fn: Any, *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def cut_after(self, direction: str, n: int, *, reset: bool = True) -> None:
        self._call(self._arm, "reset" if reset else "cut", direction, n)

    def drop_after(self, direction: str, n: int) -> None:
        self._call(self._arm, "drop", direction, n)

    def _arm(self, kind: str, direction: str, n: int) -> None:
        self.faults.append(Fault(kind, direction, self.moved[direction] + n))

    def stall(self, seconds: float) -> None:
        self._paused_until = time.monotonic() + seconds

    def outage(self, period_s: float, down_s: float, mode: str = "reset") -> None:
        """Down `down_s` in every `period_s`, from `period_s - down_s` on (the first period starts up)."""
        self._call(self._start_outage, period_s, down_s, mode)

    def set_down(self, down: bool, mode: str = "reset") -> None:
        self._call(self._set_down, down, mode)

    def reset_all(self) -> None:
        self._call(self._interrupt_all, "reset")

    def forget_stalls(self) -> None:
        """Start measuring `worst_gap_s` afresh; close the connections left silent by earlier drops (their
        client gave up on them long ago: a real link would have timed them out)."""

        def forget() -> None:
            for c in self.conns:
                if c.silent:
                    self._close(c, reset=True)
            self.worst_gap_s = 0.0
            self.long_gaps = []
            self._last_byte = time.monotonic() if self.open_connections else None
            self._down_at_last_byte = self._down_total
            done.set()

        done = threading.Event()
        self._call(forget)
        done.wait(10)

    @property
    def open_connections(self) -> int:
        return sum(1 for c in self.conns if not c.closed)

    def figures(self) -> dict[str, Any]:
        cuts = len(self.interrupted)
        return {
            "bytes_up": self.moved[UP],
            "bytes_down": self.moved[DOWN],
            "connections": self.connections,
            "interruptions": cuts,
            "bytes_interrupted": sum(self.interrupted),
            "bytes_per_interruption": round(sum(self.interrupted) / cuts) if cuts else 0,
            "worst_gap_s": round(self.worst_gap_s, 2),
            "long_gaps": self.long_gaps[-20:],
        }

    def close(self) -> None:
        if not self.loop.is_closed():
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop)
            with contextlib.suppress(Exception):
                fut.result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    def __enter__(self) -> LinkProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the loop -----------------------------------------------------------
    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        _small_buffers(sock, self.shape.sock_buf)  # inherited by accepted sockets (the window is set at SYN)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.setblocking(False)
        self._server = self.loop.run_until_complete(
            asyncio.start_server(self._accept, sock=sock, limit=self.shape.chunk)
        )
        ready.set()
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    async def _shutdown(self) -> None:
        if self._outage is not None:
            self._outage.cancel()
        if self._server is not None:
            self._server.close()
        for c in self.conns:
            self._close(c, reset=False)
        me = asyncio.current_task()
        for t in asyncio.all_tasks():
            if t is not me:
                t.cancel()

    def _start_outage(self, period_s: float, down_s: float, mode: str) -> None:
        async def cycle() -> None:
            while True:
                await asyncio.sleep(period_s - down_s)
                self._set_down(True, mode)
                await asyncio.sleep(down_s)
                self._set_down(False, mode)

        if self._outage is not None:
            self._outage.cancel()
        self._outage = self.loop.create_task(cycle())

    def _set_down(self, down: bool, mode: str) -> None:
        if down and not self.down:
            self._down_since = time.monotonic()
        elif self.down and not down:
            self._down_total += time.monotonic() - self._down_since  # outage time is not counted as a stall
        self.down, self.down_mode = down, mode
        if down:
            self._interrupt_all("reset" if mode == "reset" else "drop")

    def _interrupt_all(self, kind: str) -> None:
        for c in self.conns:
            if not c.closed and not c.silent:
                self._interrupt(c, kind)

    def _interrupt(self, c: _Conn, kind: str) -> None:
        self.interrupted.append(c.exchange[UP] + c.exchange[DOWN])
        if kind == "drop":
            c.silent = True  # stop reading and writing; the sockets stay open
        else:
            self._close(c, reset=kind == "reset")

    def _close(self, c: _Conn, *, reset: bool) -> None:
        if not c.closed:
            c.closed = True
            _abort(c.client_w, reset)
            _abort(c.upstream_w, reset)
            if self.open_connections == 0:
                self._last_byte = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._last_byte is None:
            self._last_byte, self._down_at_last_byte = time.monotonic(), self._down_total
        c = _Conn(writer)
        self.conns = [x for x in self.conns if not x.closed] + [c]
        if self.down and self.down_mode == "reset":
            self._close(c, reset=True)
            return
        while self.down and not c.closed:
            # silent: a dead radio loses the SYN and TCP sends it again until the link is back; the connection
            # is held meanwhile, nothing read or forwarded (its request waits in the socket), then goes on
            await asyncio.sleep(0.05)
        if c.closed:
            return
        try:
            up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            _small_buffers(up, self.shape.sock_buf)
            up.setblocking(False)
            await self.loop.sock_connect(up, self.target)
            ureader, uwriter = await asyncio.open_connection(sock=up, limit=self.shape.chunk)
        except OSError:
            self._close(c, reset=True)
            return
        c.upstream_w = uwriter
        if self.shape.sock_buf:
            for w in (writer, uwriter):
                w.transport.set_write_buffer_limits(high=self.shape.sock_buf)
        with contextlib.suppress(asyncio.CancelledError):  # the proxy closing
            await asyncio.gather(self._pipe(c, reader, uwriter, UP), self._pipe(c, ureader, writer, DOWN))
        self._close(c, reset=False)

    async def _pipe(self, c: _Conn, src: asyncio.StreamReader, dst: asyncio.StreamWriter, d: str) -> None:
        """Read, hold the chunk on the direction's line for len/bps, deliver it latency later, in order."""
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        bps = self.shape.up_bps if d == UP else self.shape.down_bps

        async def deliver() -> None:
            while (item := await queue.get()) is not None:
                at, data = item
                if (wait := at - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                while time.monotonic() < self._paused_until and not c.closed:
                    await asyncio.sleep(0.05)
                if c.closed or c.silent:
                    continue
                data = self._account(c, d, data)
                try:
                    dst.write(data)
                    await dst.drain()
                except (ConnectionError, OSError):
                    self._close(c, reset=False)
                if c.fault is not None:
                    kind, c.fault = c.fault.kind, None
                    self._interrupt(c, kind)
            if not c.closed and not c.silent:
                with contextlib.suppress(OSError):
                    dst.write_eof()

        task = asyncio.ensure_future(deliver())
        try:
            while not c.closed and not c.silent:
                try:
                    data = await src.read(self.shape.chunk)
                except (ConnectionError, OSError):
                    break
                if not data or c.closed or c.silent:
                    break
                now = time.monotonic()
                done = now
                if bps:
                    done = max(now, self._line_free[d]) + len(data) / bps
                    self._line_free[d] = done
                queue.put_nowait((done + self.shape.latency_s, data))
                if (wait := done - time.monotonic()) > 0:
                    await asyncio.sleep(wait)  # the chunk is on the line: read no further meanwhile
        finally:
            queue.put_nowait(None)
            await task
        if c.silent:
            await asyncio.Event().wait()  # never forwards again, never closes (until the proxy closes)

    def _account(self, c: _Conn, d: str, data: bytes) -> bytes:
        """Count what crosses; if a fault's mark falls in `data`, cut it there and let the fault strike after it."""
        now = time.monotonic()
        if self._last_byte is not None:
            gap = now - self._last_byte - (self._down_total - self._down_at_last_byte)
            self.worst_gap_s = max(self.worst_gap_s, gap)
            if gap > self.long_gap_s:
                self.long_gaps.append({
                    "ended_at_s": round(now - self._t0, 1),
                    "ended_at": time.strftime("%H:%M:%S"),
                    "gap_s": round(gap, 2),
                    "resumed": d,
                    "new_exchange": (d == UP and c.exchange[DOWN] > 0) or c.exchange == {UP: 0, DOWN: 0},
                    "conn_bytes": dict(c.moved),
                    "open": self.open_connections,
                    "silent": sum(1 for x in self.conns if x.silent and not x.closed),
                })  # fmt: skip
        self._last_byte, self._down_at_last_byte = now, self._down_total
        for f in self.faults:
            if f.direction == d and self.moved[d] + len(data) >= f.at:
                self.faults.remove(f)
                c.fault = f
                data = data[: max(f.at - self.moved[d], 0)]
                break
        if d == UP and c.exchange[DOWN]:
            c.exchange = {UP: 0, DOWN: 0}  # a new request on a kept-alive connection
        c.moved[d] += len(data)
        c.exchange[d] += len(data)
        self.moved[d] += len(data)
        return data
