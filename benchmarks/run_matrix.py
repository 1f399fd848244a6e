#!/usr/bin/env python3
"""Runs issue 7's benchmark matrix with bytecast_throughput and prints a markdown table.

    benchmarks/run_matrix.py [BUILD_DIR] [--repeats 3] [--big-total 8G] [--small-total 64M]
                             [--quick] [--csv benchmarks/results.csv]

BUILD_DIR (default build/bench) must already hold benchmarks/bytecast_throughput: this script
builds nothing (cmake --preset bench && cmake --build --preset bench). The Rust peers,
benchmarks/peers/release/bytecast_peers there (built with the bench preset when Debian's cargo is
installed), run too when present; without them the script says so and skips them.

Matrix: C = 64 B with N = 1, 4, 16 at T = 64 MiB; C = 64 KiB with N = 1, 4, 16, 64 at T = 8 GiB.
For every cell: bytecast, channel and the two Rust peers (tokio_broadcast, seed_mpsc), each with
the plain and the drain loop, and the executor ceiling; for each chunk size: memcpy. Every configuration runs --repeats times (repeats are
interleaved, so a burst of load hits all configurations alike); the CSV keeps, per
configuration, the run with the median chunks/s and the list of all runs' chunks/s.
--quick: one repeat, T = 16 MiB and 1 GiB (for a loaded machine; the table says so).
Python 3 standard library only.
"""
import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time

from machine import cpu_description, load1

HERE = os.path.dirname(os.path.abspath(__file__))
SMALL_CHUNK = 64
BIG_CHUNK = 64 << 10
SMALL_READERS = [1, 4, 16]
BIG_READERS = [1, 4, 16, 64]
IMPLS = [("bytecast", "plain"), ("bytecast", "drain"), ("bytecast", "next"), ("channel", "plain"), ("channel", "drain")]
# bytecast_peers (benchmarks/peers): tokio::sync::broadcast, and the seed's one tokio unbounded mpsc
# channel per reader.
PEER_IMPLS = [("tokio_broadcast", "plain"), ("tokio_broadcast", "drain"), ("seed_mpsc", "plain"), ("seed_mpsc", "drain")]

CSV_FIELDS = [
    "impl", "loop", "chunk", "readers", "threads", "total_bytes", "chunks", "seconds", "chunks_per_s",
    "bytes_per_s", "writer_seconds", "writer_bytes_per_s", "peak_rss_bytes", "baseline_rss_bytes",
    "peak_queued_bytes", "peak_queued_chunks", "peak_queue_entries", "rss_growth_per_queued_byte",
    "rss_overhead_per_queued_chunk", "send_retries", "load1", "repeats", "chunks_per_s_runs",
    "broadcast_capacity",
]


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip()
    if text and text[-1].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text)


def human_bytes(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} B"


def si(x):
    """3 significant digits with an SI suffix: 12.3M."""
    if x is None:
        return "-"
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def configurations(small_total, big_total, peers):
    configs = []
    impls = IMPLS + (PEER_IMPLS if peers else [])
    for chunk, readers_list, total in ((SMALL_CHUNK, SMALL_READERS, small_total), (BIG_CHUNK, BIG_READERS, big_total)):
        for readers in readers_list:
            for impl, loop in impls:
                configs.append(dict(impl=impl, loop=loop, chunk=chunk, readers=readers, total=total))
            configs.append(dict(impl="ceiling", loop="plain", chunk=chunk, readers=readers, total=total))
        configs.append(dict(impl="memcpy", loop="plain", chunk=chunk, readers=1, total=total))
    return configs


def run_one(programs, c, threads):
    cmd = [programs[c["impl"]], "--impl", c["impl"], "--loop", c["loop"], "--chunk", str(c["chunk"]),
           "--readers", str(c["readers"]), "--total-bytes", str(c["total"]), "--threads", str(threads)]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"run_matrix: {' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def key(r):
    return (r["impl"], r["loop"], r["chunk"], r["readers"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build_dir", nargs="?", default="build/bench")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--small-total", default="64M", help="T for C = 64 B (default 64M)")
    ap.add_argument("--big-total", default="8G", help="T for C = 64 KiB (default 8G)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="1 repeat, T = 16M and 1G")
    ap.add_argument("--csv", default=os.path.join(HERE, "results.csv"))
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.small_total, args.big_total = 1, "16M", "1G"
    small_total, big_total = parse_size(args.small_total), parse_size(args.big_total)

    program = os.path.join(args.build_dir, "benchmarks", "bytecast_throughput")
    if not os.access(program, os.X_OK):
        sys.exit(f"run_matrix: no {program}; build it first: cmake --preset bench && cmake --build --preset bench")
    programs = {impl: program for impl in ("bytecast", "channel", "ceiling", "memcpy")}
    peers = os.path.join(args.build_dir, "benchmarks", "peers", "release", "bytecast_peers")
    if os.access(peers, os.X_OK):
        programs.update({impl: peers for impl, _ in PEER_IMPLS})
    else:
        print(f"run_matrix: no {peers}: the Rust peers are skipped (apt-get install cargo librust-tokio-dev "
              "librust-bytes-dev, then cmake --preset bench && cmake --build --preset bench)", file=sys.stderr)
        peers = None

    configs = configurations(small_total, big_total, peers is not None)
    load_before = load1()
    started = time.time()
    runs = {}
    for rep in range(args.repeats):
        for i, c in enumerate(configs):
            r = run_one(programs, c, args.threads)
            runs.setdefault(key(r), []).append(r)
            print(f"[{rep + 1}/{args.repeats} {i + 1}/{len(configs)}] {r['impl']:15} {r['loop']:5} C={r['chunk']:<6}"
                  f" N={r['readers']:<3} {si(r['chunks_per_s'])} chunks/s  load {r['load1']:.2f}",
                  file=sys.stderr, flush=True)
    load_after = load1()
    elapsed = time.time() - started

    # Per configuration: the run with the median chunks/s (so all its fields belong together).
    medians = {}
    for k, rs in runs.items():
        rs = sorted(rs, key=lambda r: r["chunks_per_s"])
        m = dict(rs[(len(rs) - 1) // 2])  # an even count takes the lower middle run
        m["repeats"] = len(rs)
        m["chunks_per_s_runs"] = " ".join(str(int(r["chunks_per_s"])) for r in runs[k])
        medians[k] = m

    with open(args.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for c in configs:
            loop = "-" if c["impl"] in ("ceiling", "memcpy") else c["loop"]
            readers = 0 if c["impl"] == "memcpy" else c["readers"]
            m = medians[(c["impl"], loop, c["chunk"], readers)]
            w.writerow({k: ("" if m.get(k) is None else m.get(k)) for k in CSV_FIELDS})

    print_table(medians, args, small_total, big_total, load_before, load_after, elapsed, peers is not None)
    print(f"\nCSV: {args.csv}", file=sys.stderr)


def peer_versions():
    """The tokio and bytes versions cargo built the peers with, from benchmarks/peers/Cargo.lock."""
    versions, name = {}, None
    try:
        with open(os.path.join(HERE, "peers", "Cargo.lock")) as f:
            for line in f:
                if line.startswith("name = "):
                    name = line.split('"')[1]
                elif line.startswith("version = ") and name in ("tokio", "bytes"):
                    versions[name] = line.split('"')[1]
    except OSError:
        pass
    return ", ".join(f"{n} {v}" for n, v in sorted(versions.items(), reverse=True))


def print_table(medians, args, small_total, big_total, load_before, load_after, elapsed, peers):
    def get(impl, loop, chunk, readers):
        return medians.get((impl, loop, chunk, readers))

    def best(impl, chunk, readers):
        """(chunks/s, loop letter) of the faster of the implementation's two loops, or None."""
        runs = [(m["chunks_per_s"], loop[0]) for loop in ("plain", "drain") if (m := get(impl, loop, chunk, readers))]
        return max(runs) if runs else None

    reduced = []
    if small_total != 64 << 20:
        reduced.append(f"C = 64 B at T = {human_bytes(small_total)} (issue: 64 MiB)")
    if big_total != 8 << 30:
        reduced.append(f"C = 64 KiB at T = {human_bytes(big_total)} (issue: 8 GiB)")
    print(f"bytecast_throughput, median of {args.repeats}, {args.threads} io threads + 1 writer thread; "
          f"{cpu_description()}; load average {load_before:.2f} before, {load_after:.2f} after; {elapsed:.0f} s")
    if peers:
        print(f"Rust peers: bytecast_peers ({peer_versions()}; cargo --release, {args.threads} tokio worker threads)")
    else:
        print("Rust peers: not built, skipped")
    if reduced:
        print("**REDUCED SIZES: " + "; ".join(reduced) + "**")
    print()
    print("Chunks/s per reader loop; tokio broadcast, the seed design and the channel fan-out in their best loop "
          "(p = plain, d = drain); the ratios are the next() loop's. writer/memcpy: the writer's bandwidth against "
          "memcpy into a pre-faulted ring (64 KiB rows, next loop); RSS/queued: peak RSS growth per peak queued byte "
          "(plain loop, where readers fall behind most).")
    print()
    print("| C | N | plain | drain | next | tokio broadcast | seed (mpsc per reader) | channel fan-out | ceiling "
          "| next vs tokio | next vs seed | next vs drain | next vs plain | writer/memcpy | RSS/queued |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")

    def cps(m):
        return m["chunks_per_s"] if m else None

    def ratio(a, b, pct=False):
        if not a or not b:
            return "-"
        return f"{a / b:.0%}" if pct else f"{a / b:.2f}x"

    for chunk, readers_list in ((SMALL_CHUNK, SMALL_READERS), (BIG_CHUNK, BIG_READERS)):
        mem = get("memcpy", "-", chunk, 0)
        for readers in readers_list:
            plain, drain, nxt = (cps(get("bytecast", l, chunk, readers)) for l in ("plain", "drain", "next"))
            if not (plain or drain or nxt):
                continue
            tokio, seed, chan = (best(i, chunk, readers) for i in ("tokio_broadcast", "seed_mpsc", "channel"))
            ceil = cps(get("ceiling", "-", chunk, readers))
            nxt_m = get("bytecast", "next", chunk, readers) or {}
            wr = nxt_m.get("writer_bytes_per_s")
            memcpy_bw = mem["bytes_per_s"] if mem and chunk == BIG_CHUNK else None
            growth = (get("bytecast", "plain", chunk, readers) or {}).get("rss_growth_per_queued_byte")

            def shown(b):
                return f"{si(b[0])} {b[1]}" if b else "-"

            print(f"| {human_bytes(chunk)} | {readers} | {si(plain)} | {si(drain)} | {si(nxt)} | {shown(tokio)} | "
                  f"{shown(seed)} | {shown(chan)} | {si(ceil)} | {ratio(nxt, tokio[0] if tokio else None)} | "
                  f"{ratio(nxt, seed[0] if seed else None)} | {ratio(nxt, drain, pct=True)} | {ratio(nxt, plain)} | "
                  f"{ratio(wr, memcpy_bw, pct=True)} | {'-' if growth is None else f'{growth:.2f}'} |")


if __name__ == "__main__":
    main()
