#!/usr/bin/env python3
"""The network fan-out benchmark (issue 15, item 5): bytecast_net_fanout against iperf3, same run.

    benchmarks/run_net.py [BUILD_DIR] [--repeats 3] [--seconds 2] [--smoke] [--no-batch-too]

BUILD_DIR (default build/bench) must hold benchmarks/bytecast_net_fanout. For chunks of C = 1 KiB
and 64 KiB and N = 1, 16, 64 clients: a fan-out server on 127.0.0.1 (one thread) fed in-process as
fast as its clients take it, and N clients in ONE client process on one thread; aggregate bytes/s
delivered. Then the machine's limit for the same shape: iperf3 with -P N streams and -l C bytes per
write (one sender thread, one receiver thread: iperf3 3.x runs each side on one thread). Prints a
markdown table: bytecast / iperf3, and each sender's CPU time per GiB delivered.
--no-batch-too: also bytecast with one socket write per chunk (no async_next_batch).
--smoke: tiny sizes, N = 2, one repeat, iperf3 for 1 s: checks that everything runs (CTest).
Python 3 standard library only.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

from machine import cpu_description, load1

GIB = 1 << 30


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_bytecast(exe, clients, chunk, per_client, batch):
    server_cmd = [exe, "server", "--clients", str(clients), "--chunk", str(chunk), "--total-bytes", str(per_client)]
    if not batch:
        server_cmd.append("--no-batch")
    server = subprocess.Popen(server_cmd, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline().split()
        if len(line) != 2 or line[0] != "listening":
            raise SystemExit(f"the server did not say where it listens: {line}")
        client = subprocess.run([exe, "client", "--clients", str(clients), "--port", line[1], "--chunk", str(chunk),
                                 "--total-bytes", str(per_client)], capture_output=True, text=True, timeout=600)
        if client.returncode != 0:
            raise SystemExit(f"client failed: {client.stderr}")
        out, _ = server.communicate(timeout=60)
        if server.returncode != 0:
            raise SystemExit(f"server failed ({server.returncode})")
    finally:
        if server.poll() is None:
            server.kill()
    c = json.loads(client.stdout.strip().splitlines()[-1])
    s = json.loads(out.strip().splitlines()[-1])
    return {"bytes_per_s": c["bytes_per_s"], "cpu_per_gib": s["cpu_seconds"] / (s["sent_bytes"] / GIB)}


def listening(port):
    """True once something listens on 127.0.0.1:port (from /proc/net/tcp, state 0A)."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                return True
    return False


def run_iperf3(clients, chunk, seconds):
    port = free_port()
    server = subprocess.Popen(["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not listening(port):  # a probe connection would count as iperf3's one client
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("iperf3 -s did not listen")
            time.sleep(0.02)
        client = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-P", str(clients), "-l", str(chunk),
                                 "-t", str(seconds), "-J"], capture_output=True, text=True, timeout=seconds + 60)
        if client.returncode != 0:
            raise SystemExit(f"iperf3 -c failed: {client.stdout[-500:]} {client.stderr}")
        server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    r = json.loads(client.stdout)
    end = r["end"]
    rate = end["sum_received"]["bits_per_second"] / 8
    sent_bytes = end["sum_sent"]["bytes"]
    duration = end["sum_sent"]["seconds"]
    sender_cpu = end["cpu_utilization_percent"]["host_total"] / 100 * duration
    return {"bytes_per_s": rate, "cpu_per_gib": sender_cpu / (sent_bytes / GIB)}


def si_bytes(x):
    for unit, scale in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g} B/s"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir", nargs="?", default="build/bench")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0, help="about how long each bytecast run and each iperf3 run lasts")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--no-batch-too", action="store_true")
    args = ap.parse_args()

    exe = os.path.join(args.build_dir, "benchmarks", "bytecast_net_fanout")
    if not os.path.exists(exe):
        raise SystemExit(f"{exe} not found: cmake --preset bench && cmake --build --preset bench")
    if shutil.which("iperf3") is None:
        raise SystemExit("iperf3 not found (Debian: apt-get install iperf3)")

    chunks = [1024, 65536]
    client_counts = [2] if args.smoke else [1, 16, 64]
    repeats = 1 if args.smoke else args.repeats
    seconds = 1 if args.smoke else args.seconds
    # Bytes per client so that a run lasts about `seconds` at a guessed rate (1 KiB chunks are
    # slower); rounded to whole chunks.
    guess = {1024: 0.6e9, 65536: 3e9}

    load_before = load1()
    start = time.monotonic()
    rows = []
    for chunk in chunks:
        for n in client_counts:
            per_client = 1 << 20 if args.smoke else int(guess[chunk] * seconds / n) // chunk * chunk
            kinds = [("bytecast", True)] + ([("bytecast, no batch", False)] if args.no_batch_too else [])
            results = {name: [] for name, _ in kinds}
            results["iperf3"] = []
            for _ in range(repeats):  # interleaved, so a burst of load hits all alike
                for name, batch in kinds:
                    results[name].append(run_bytecast(exe, n, chunk, per_client, batch))
                results["iperf3"].append(run_iperf3(n, chunk, seconds))
            med = {k: {m: statistics.median(r[m] for r in v) for m in ("bytes_per_s", "cpu_per_gib")}
                   for k, v in results.items()}
            rows.append((chunk, n, med))
            print(f"C={chunk} N={n}: " + ", ".join(f"{k} {si_bytes(v['bytes_per_s'])}" for k, v in med.items()),
                  file=sys.stderr, flush=True)

    print(f"bytecast_net_fanout vs iperf3 on 127.0.0.1, median of {repeats}; {cpu_description()}; load average "
          f"{load_before:.2f} before, {load1():.2f} after; {time.monotonic() - start:.0f} s")
    print()
    extra = "| bytecast, no batch " if args.no_batch_too else ""
    print(f"| C | N | bytecast {extra}| iperf3 | bytecast / iperf3 | bytecast server CPU s/GiB | iperf3 sender CPU s/GiB |")
    print("|---|---|---|" + ("---|" if args.no_batch_too else "") + "---|---|---|---|")
    for chunk, n, med in rows:
        b, i = med["bytecast"], med["iperf3"]
        nb = f"| {si_bytes(med['bytecast, no batch']['bytes_per_s'])} " if args.no_batch_too else ""
        print(f"| {chunk // 1024} KiB | {n} | {si_bytes(b['bytes_per_s'])} {nb}| {si_bytes(i['bytes_per_s'])} | "
              f"{b['bytes_per_s'] / i['bytes_per_s']:.0%} | {b['cpu_per_gib']:.3f} | {i['cpu_per_gib']:.3f} |")


if __name__ == "__main__":
    main()
