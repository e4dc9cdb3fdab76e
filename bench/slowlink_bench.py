"""Slow-link benchmark (issue 12, P9): a village pushes N cases to its township through a shaping proxy.

    python bench/slowlink_bench.py [--cases 1000] [--per-commit 1000] [--page-kib 1024] [--profiles …] [--json FILE]

Real county, township and village processes on 127.0.0.1 (tests/e2e/cluster.py); the village's parent URL is
the proxy's (tests/linkproxy.py): a shared serial line per direction at the profile's bandwidth, the profile's
one-way latency, 8 KiB socket buffers. For each profile (512 kbit/s with 100 ms, 128 kbit/s with 300 ms):
N cases are logged offline at the village (each with ~100 B of notes that do not compress, as the report's
~178 B a case), in commits of `--per-commit` (1,000: the report's single commit, which travels as one page
until pages are cut inside a commit), then one `village-agent sync --page-kib N` runs through the proxy.

Figures per profile:
- `session_s`: the sync session's own duration (the report's `elapsed_s`, measured inside the village
  process: the interpreter's start and the opening of the store are not link time);
- `floor_s`, the compressed wire floor of the same run: (bytes up + bytes down, as counted at the proxy:
  compressed bodies and HTTP headers, every byte that had to cross) ÷ bandwidth + 3 round trips (hello,
  the first push's answer, the last pull's answer: a session cannot take fewer);
- `ratio` = session_s / floor_s (goal P9: ≤ 1.25);
- the cut run: the same N cases again at the same profile with the link reset once in the middle of the
  push body; `resent_bytes` = bytes up in the cut run − bytes up in the clean run.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.cluster import Cluster  # noqa: E402
from tests.linkproxy import LinkProxy, Shape  # noqa: E402

ITEM = "城乡居民医保参保登记"
PROFILES = {"512kbit_100ms": (64_000, 0.1), "128kbit_300ms": (16_000, 0.3)}
ROUND_TRIPS = 3


def log_cases(c: Cluster, village: str, n: int, per_commit: int) -> None:
    for start in range(0, n, per_commit):
        cases = [{**case, "notes": secrets.token_hex(50)} for case in c.cases(min(per_commit, n - start), ITEM)]
        c.run(village, "case", "new", "--offline", "--json", "-", input=json.dumps(cases, ensure_ascii=False))


def one_sync(c: Cluster, proxy: LinkProxy, shape: Shape, page_kib: int, cut_at: int | None = None) -> dict[str, Any]:
    up0, down0, cuts0 = proxy.moved["up"], proxy.moved["down"], len(proxy.interrupted)
    proxy.shape = shape
    if cut_at is not None:
        proxy.cut_after("up", cut_at)
    t0 = time.monotonic()
    try:
        report = json.loads(c.run("v11", "sync", "--json", "--page-kib", str(page_kib)).stdout)
    finally:
        proxy.shape = Shape(sock_buf=shape.sock_buf)
    return {
        "wall_s": round(time.monotonic() - t0, 2),
        "session_s": report["elapsed_s"],
        "pushed": report["pushed_entries"],
        "requests": report["requests"],
        "bytes_up": proxy.moved["up"] - up0,
        "bytes_down": proxy.moved["down"] - down0,
        "cuts": len(proxy.interrupted) - cuts0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--per-commit", type=int, default=1000, help="cases a commit (one `case new` call)")
    ap.add_argument("--page-kib", type=int, default=1024, help="the village's --page-kib")
    ap.add_argument("--profiles", default=",".join(PROFILES), help="comma-separated: " + ", ".join(PROFILES))
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args()
    out: dict[str, Any] = {"cases": args.cases, "per_commit": args.per_commit, "page_kib": args.page_kib}
    out["profiles"] = {}
    with tempfile.TemporaryDirectory(prefix="sanji-slowlink-") as tmp:
        c = Cluster(Path(tmp))
        proxy: LinkProxy | None = None
        try:
            c.county()
            county = c.start("county")
            c.enrol("t1", "township", "430321101000", "county", county.url or "")
            t1 = c.start("t1", "--sync-interval", "3600")
            proxy = LinkProxy.to_url(t1.url or "", Shape(sock_buf=8192))
            c.enrol("v11", "village", "430321101201", "t1", proxy.url)
            for name in args.profiles.split(","):
                bps, latency = PROFILES[name]
                shape = Shape(up_bps=bps, down_bps=bps, latency_s=latency, sock_buf=8192)
                log_cases(c, "v11", args.cases, args.per_commit)
                clean = one_sync(c, proxy, shape, args.page_kib)
                floor = (clean["bytes_up"] + clean["bytes_down"]) / bps + ROUND_TRIPS * 2 * latency
                log_cases(c, "v11", args.cases, args.per_commit)
                cut = one_sync(c, proxy, shape, args.page_kib, cut_at=clean["bytes_up"] // 2)
                res = {
                    "bandwidth_Bps": bps,
                    "latency_s": latency,
                    "clean": clean,
                    "floor_s": round(floor, 2),
                    "ratio": round(clean["session_s"] / floor, 3),
                    "cut": cut,
                    "resent_bytes": cut["bytes_up"] - clean["bytes_up"],
                }
                out["profiles"][name] = res
                print(
                    f"{name}: {args.cases} cases, {clean['bytes_up']:,} B up, {clean['bytes_down']:,} B down, "
                    f"{clean['requests']} requests; session {clean['session_s']:.2f} s vs floor {floor:.2f} s "
                    f"= {res['ratio']:.2f}x; after one cut {res['resent_bytes']:,} B re-sent "
                    f"(cut run {cut['session_s']:.2f} s)",
                    flush=True,
                )
        finally:
            if proxy is not None:
                proxy.close()
            c.close()
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=1), encoding="utf-8")
        print(f"json: {args.json_out}")


if __name__ == "__main__":
    main()
