#!/usr/bin/env python3
"""Network tests of tcp_fanout and http_fanout, run by CTest (label `network`).

    fanout_tests.py --protocol tcp|http --server PATH --case NAME

Each case starts the server on 127.0.0.1 with an ephemeral port, talks to it with real clients
(`nc` from netcat-openbsd, `curl`, plain Python sockets) and fails with a message when something
is wrong or takes too long: every wait is bounded, and synchronisation goes through the server's
own output (its `listening on` line, its log and the `--stats` line on stderr) or what a client
observes, never through a sleep (the few sleeps are windows in which something must not happen).
Whatever happens, every process a case started is killed at the end.

Needs python3 (standard library only), nc, curl and sha256sum.
"""

import argparse
import ctypes
import hashlib
import json
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

CASE_DEADLINE = 55  # seconds; CTest's TIMEOUT for these tests is 60
HOST = "127.0.0.1"  # the only address these tests ever use


class Failure(Exception):
    pass


def log(text):
    print(text, flush=True)


# --- processes -------------------------------------------------------------------------------

def _die_with_this_script():
    # In the child, before exec: SIGKILL it when this script dies, however it dies (even when
    # CTest kills it on timeout), so that no server or client outlives a test.
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Processes:
    """Every process a case starts; `cleanup()` (always run) kills what is still running."""

    def __init__(self):
        self.started = []

    def start(self, args, preexec=None, **kwargs):
        """Starts `args`; `preexec` (optional) runs in the child before exec, after the stdio
        redirections (to lower a limit, or close a descriptor)."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)

        def in_child():
            _die_with_this_script()
            if preexec is not None:
                preexec()
        # Its own process group, so that a pipeline (bash -c 'nc ... | sha256sum') dies whole.
        p = subprocess.Popen(args, preexec_fn=in_child, start_new_session=True, **kwargs)
        self.started.append(p)
        return p

    def cleanup(self):
        for p in self.started:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in self.started:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log(f"warning: process {p.pid} ({p.args!r}) did not die")


def wait_exit(p, timeout, what):
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failure(f"{what} did not exit within {timeout} s") from None


def wait_until(predicate, timeout, what, interval=0.01):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# --- the server ------------------------------------------------------------------------------

STATS = re.compile(r"stats: (.*)$")


class Server:
    """The server under test, with --stats 50, fed through a pipe on its stdin, or with the file
    `stdin_file` on its stdin (then `feed()` is not available). `preexec` as for Processes.start."""

    def __init__(self, procs, exe, *args, stdin_file=None, preexec=None):
        cmd = [exe, "--bind", HOST, "--port", "0", "--stats", "50", *args]
        pipes = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec=preexec)
        if stdin_file is None:
            read_end, write_end = os.pipe()
            self.proc = procs.start(cmd, stdin=read_end, **pipes)
            os.close(read_end)
            self.feed_pipe = os.fdopen(write_end, "wb", buffering=0)
        else:
            with open(stdin_file, "rb") as f:
                self.proc = procs.start(cmd, stdin=f, **pipes)
            self.feed_pipe = None
        self.name = os.path.basename(exe)
        self.log_lines = []
        self.stats = {}
        self.changed = threading.Condition()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        first = self.proc.stdout.readline().decode(errors="replace").strip()  # bounded by the case deadline
        m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)", first)
        if not m:
            raise Failure(f"expected 'listening on 127.0.0.1:PORT' on stdout, got {first!r}")
        self.port = int(m.group(1))
        log(f"{self.name} listening on port {self.port}")

    def _read_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            log(f"  | {line}")
            with self.changed:
                self.log_lines.append(line)
                m = STATS.search(line)
                if m:
                    self.stats = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
                self.changed.notify_all()

    def wait_for_stats(self, what, predicate, timeout=20):
        """Waits until the latest stats line satisfies `predicate`; fails after `timeout`."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not (self.stats and predicate(self.stats)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Failure(f"timed out after {timeout} s waiting for {what}; last stats: {self.stats}")
                self.changed.wait(left)
            return dict(self.stats)

    def wait_for_log(self, pattern, timeout=20):
        """Waits for a line on stderr that matches `pattern`; returns its match."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        with self.changed:
            while True:
                for line in self.log_lines:
                    if m := regex.search(line):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Failure(f"timed out after {timeout} s waiting for a log line matching {pattern!r}")
                self.changed.wait(left)

    def log_matches(self, pattern):
        """The lines on stderr so far that match `pattern`."""
        regex = re.compile(pattern)
        with self.changed:
            return [line for line in self.log_lines if regex.search(line)]

    def feed(self, data):
        self.feed_pipe.write(data)

    def end_feed(self):
        self.feed_pipe.close()

    def wait_exit(self, timeout=20):
        rc = wait_exit(self.proc, timeout, self.name)
        if rc != 0:
            raise Failure(f"{self.name} exited with {rc}, expected 0")


# --- clients ---------------------------------------------------------------------------------

class Protocol:
    def __init__(self, name):
        self.name = name  # "tcp" or "http"

    def client_command(self, port):
        """A real client that writes everything it receives to stdout, and exits 0 on a clean end."""
        if self.name == "tcp":
            return ["nc", "-d", HOST, str(port)]  # -d: never reads stdin, so never sends anything
        # --fail: an HTTP error is an error; a missing last-chunk (no clean end) makes curl exit 18.
        return ["curl", "-sS", "-N", "--fail", "--max-time", "50", "--noproxy", "*", f"http://{HOST}:{port}/stream"]

    def start_client(self, procs, port, out_path):
        return procs.start(self.client_command(port), stdout=open(out_path, "wb"), stderr=subprocess.PIPE)

    def start_hashing_client(self, procs, port, out_path):
        """A client piped into sha256sum: no data on disk, the hash in out_path."""
        cmd = shlex.join(self.client_command(port)) + " | sha256sum"
        return procs.start(["bash", "-c", "set -o pipefail; " + cmd], stdout=open(out_path, "wb"),
                           stderr=subprocess.PIPE)

    def payload_prefix(self, received):
        """The feed's bytes in what a raw_socket received, which may end anywhere (a reset)."""
        if self.name == "tcp":
            return received
        head, _, body = received.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200 "):
            raise Failure(f"expected a 200 response, got {received[:100]!r}")
        payload = b""
        while body:
            size_line, sep, rest = body.partition(b"\r\n")
            if not sep:
                break  # cut in the size line
            size = int(size_line, 16)
            payload, body = payload + rest[:size], rest[size + 2:]
        return payload

    def raw_socket(self, port, rcvbuf=None):
        """A Python client socket that asked for the stream (and reads nothing yet)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: sets the window
        s.settimeout(10)
        s.connect((HOST, port))
        if self.name == "http":
            s.sendall(b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        return s


def sha256_of(paths):
    out = subprocess.run(["sha256sum", *paths], check=True, capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines()]


def check_clients_ended_cleanly(clients, timeout=30):
    deadline = time.monotonic() + timeout
    for i, p in enumerate(clients):
        rc = wait_exit(p, max(0.1, deadline - time.monotonic()), f"client {i}")
        if rc != 0:
            err = p.stderr.read().decode(errors="replace").strip() if p.stderr else ""
            raise Failure(f"client {i} exited with {rc} (no clean end?): {err}")


def abort_socket(s):
    """Closes with a reset (SO_LINGER 0): an abrupt disconnect."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


# --- the cases -------------------------------------------------------------------------------

def case_fanout(ctx):
    """20 real clients receive exactly the file piped on stdin after they all connected."""
    n = 20
    data = os.urandom(3 * 1024 * 1024 + 12345)
    src = ctx.path("input.bin")
    with open(src, "wb") as f:
        f.write(data)
    server = Server(ctx.procs, ctx.exe)
    outs = [ctx.path(f"client{i}.out") for i in range(n)]
    clients = [ctx.proto.start_client(ctx.procs, server.port, out) for out in outs]
    server.wait_for_stats(f"{n} connected streams", lambda s: s["streams"] == n)

    cat = ctx.procs.start(["cat", src], stdout=server.feed_pipe)  # the file, piped on stdin
    server.end_feed()  # cat holds the only write end now: its end is the feed's end
    wait_exit(cat, 20, "cat")
    check_clients_ended_cleanly(clients)
    server.wait_exit()

    hashes = sha256_of([src, *outs])
    wrong = [i for i, h in enumerate(hashes[1:]) if h != hashes[0]]
    if wrong:
        sizes = [os.path.getsize(outs[i]) for i in wrong]
        raise Failure(f"clients {wrong} received other data (sizes {sizes}, expected {len(data)})")
    log(f"all {n} clients received the {len(data)} bytes, sha256 {hashes[0]}")


def case_replay(ctx):
    """A late client gets the retained recent chunks (--replay) first, then the live feed."""
    window = 128 * 1024
    server = Server(ctx.procs, ctx.exe, "--replay", "128k")
    early_out, late1_out, late2_out = ctx.path("early.out"), ctx.path("late1.out"), ctx.path("late2.out")
    early = ctx.proto.start_client(ctx.procs, server.port, early_out)
    server.wait_for_stats("the early client", lambda s: s["streams"] == 1)

    a = os.urandom(96 * 1024)  # less than the window: all of it is retained
    server.feed(a)
    server.wait_for_stats("part A written", lambda s: s["bytes"] == len(a))
    late1 = ctx.proto.start_client(ctx.procs, server.port, late1_out)
    server.wait_for_stats("the first late client", lambda s: s["streams"] == 2)

    b = os.urandom(1024 * 1024)  # more than the window: only its newest chunks are retained
    server.feed(b)
    server.wait_for_stats("part B written", lambda s: s["bytes"] == len(a) + len(b))
    late2 = ctx.proto.start_client(ctx.procs, server.port, late2_out)
    server.wait_for_stats("the second late client", lambda s: s["streams"] == 3)

    c = os.urandom(64 * 1024 + 7)
    server.feed(c)
    server.end_feed()
    check_clients_ended_cleanly([early, late1, late2])
    server.wait_exit()

    got = {name: open(path, "rb").read() for name, path in
           (("early", early_out), ("late1", late1_out), ("late2", late2_out))}
    if got["early"] != a + b + c:
        raise Failure(f"the early client got {len(got['early'])} bytes, not the {len(a + b + c)} written")
    if got["late1"] != a + b + c:
        raise Failure(f"the first late client got {len(got['late1'])} bytes, expected the replay of "
                      f"all {len(a)} earlier bytes and the {len(b + c)} after")
    replayed = len(got["late2"]) - len(c)
    if not got["late2"].endswith(c) or not 0 < replayed <= window or not b.endswith(got["late2"][:replayed]):
        raise Failure(f"the second late client got {len(got['late2'])} bytes: expected the newest "
                      f"1..{window} bytes before it joined, then the {len(c)} after")
    log(f"late clients: the first got all {len(a)} earlier bytes, the second the newest {replayed} "
        f"(window {window}), then the live feed")


def case_stalled_client(ctx):
    """Under --policy disconnect, a client that stops reading is cut off, and the others keep
    their throughput: measured without and with the stalled client."""
    readers = 5
    size = 48 * 1024 * 1024
    rate = 20e6  # bytes/s the feed offers at most (the server may take less: then the pipe slows it)
    # The readers must never fall a queue limit behind on their own, whatever the machine's load:
    # the feed waits until every one of them has written all but `window` bytes of what was fed
    # (their files show it), so a reader's queue stays below window + block, far below the limit.
    # The stalled client, which never reads, still overflows it long before the feed ends.
    limit = 16 * 1024 * 1024
    window = 4 * 1024 * 1024
    data = os.urandom(1024 * 1024)
    block = 64 * 1024
    expected = hashlib.sha256(data * (size // len(data))).hexdigest()

    def run(with_stalled):
        label = "with a stalled client" if with_stalled else "baseline"
        server = Server(ctx.procs, ctx.exe, "--policy", "disconnect", "--queue-limit", str(limit))
        stalled = None
        if with_stalled:
            stalled = ctx.proto.raw_socket(server.port, rcvbuf=4096)  # connects, never reads
            server.wait_for_stats("the stalled client", lambda s: s["streams"] == 1)
        outs = [ctx.path(f"{label[:4]}{i}.out") for i in range(readers)]
        clients = [ctx.proto.start_client(ctx.procs, server.port, out) for out in outs]
        total = readers + (1 if with_stalled else 0)
        server.wait_for_stats(f"{total} connected streams", lambda s: s["streams"] == total)

        def feed():
            start = time.monotonic()
            try:
                for sent in range(0, size, block):
                    while min(os.path.getsize(out) for out in outs) + window < sent:
                        if time.monotonic() > deadline or any(p.poll() is not None for p in clients):
                            break  # a reader is gone or stuck: the checks below say which
                        time.sleep(0.002)
                    i = sent % len(data)
                    server.feed(data[i:i + block])
                    pause = start + (sent + block) / rate - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                server.end_feed()
            except OSError:
                pass  # the server is gone: the case fails on its own

        t0 = time.monotonic()
        deadline = t0 + 60
        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        ended = {}

        def all_ended():
            for i, p in enumerate(clients):
                if i not in ended and p.poll() is not None:
                    ended[i] = time.monotonic()
            return len(ended) == readers
        wait_until(all_ended, deadline - time.monotonic(), f"the {readers} readers to finish ({label})")
        check_clients_ended_cleanly(clients, timeout=1)
        bad = [i for i, digest in enumerate(sha256_of(outs)) if digest != expected]
        if bad:
            raise Failure(f"{label}: readers {bad} did not receive the feed byte for byte")
        rates = [size / (ended[i] - t0) / 1e6 for i in range(readers)]

        if with_stalled:
            server.wait_for_stats("the stalled client to be cut off",
                                  lambda s: s["cut_off"] == 1 and s["connections"] == 0, timeout=10)
            # It got a reset, or an end without the rest of the feed: never all of it.
            received = 0
            stalled.settimeout(5)
            try:
                while chunk := stalled.recv(1 << 20):
                    received += len(chunk)
            except (ConnectionResetError, socket.timeout):
                pass
            stalled.close()
            if received >= size:
                raise Failure(f"the stalled client received all {received} bytes: it was not cut off")
            log(f"the stalled client was cut off after {received} bytes (of {size})")
        server.wait_exit()
        log(f"{label}: readers' throughput in MB/s: " + ", ".join(f"{r:.1f}" for r in rates))
        return rates

    baseline = run(False)
    stalled = run(True)
    base = sum(baseline) / len(baseline)
    worst = min(stalled)
    log(f"RESULT baseline mean {base:.1f} MB/s; with the stalled client: min {worst:.1f} MB/s, "
        f"mean {sum(stalled) / len(stalled):.1f} MB/s ({worst / base:.0%} of the baseline mean; feed offered "
        f"{rate / 1e6:.0f} MB/s)")
    if worst < 0.3 * base:
        raise Failure(f"a reader slowed down to {worst:.1f} MB/s with the stalled client, "
                      f"below 30% of the baseline {base:.1f} MB/s")


def case_abrupt_disconnect(ctx):
    """Clients that vanish (kill -9, or a reset) are cleaned up: their streams are destroyed.
    The feed is silent meanwhile, so no failed write can give them away: the server has to
    notice on its own."""
    server = Server(ctx.procs, ctx.exe)
    outs = [ctx.path(f"client{i}.out") for i in range(3)]
    clients = [ctx.proto.start_client(ctx.procs, server.port, out) for out in outs]
    server.wait_for_stats("3 streams", lambda s: s["streams"] == 3)
    resetting = ctx.proto.raw_socket(server.port)
    server.wait_for_stats("4 streams", lambda s: s["streams"] == 4 and s["connections"] == 4)

    os.kill(clients[0].pid, signal.SIGKILL)
    clients[0].wait()
    server.wait_for_stats("the killed client's stream to go",
                          lambda s: s["streams"] == 3 and s["connections"] == 3, timeout=10)
    abort_socket(resetting)
    server.wait_for_stats("the reset client's stream to go",
                          lambda s: s["streams"] == 2 and s["connections"] == 2, timeout=10)
    log("both vanished clients were cleaned up")

    data = os.urandom(256 * 1024)
    server.feed(data)
    server.end_feed()
    check_clients_ended_cleanly(clients[1:])
    server.wait_exit()
    for out in outs[1:]:
        if open(out, "rb").read() != data:
            raise Failure(f"{out}: a remaining client did not get the feed")


def case_sigterm(ctx):
    """SIGTERM: stop accepting, end the feed, let clients drain (bounded), exit 0."""
    # --write-timeout far beyond the drain time: this case is about the drain time alone.
    server = Server(ctx.procs, ctx.exe, "--drain-timeout", "2000", "--write-timeout", "60000")
    outs = [ctx.path(f"client{i}.out") for i in range(5)]
    clients = [ctx.proto.start_client(ctx.procs, server.port, out) for out in outs]
    stalled = ctx.proto.raw_socket(server.port, rcvbuf=4096)  # never reads: it cannot drain
    server.wait_for_stats("6 streams", lambda s: s["streams"] == 6)
    data = os.urandom(8 * 1024 * 1024)
    server.feed(data)
    server.wait_for_stats("the data written", lambda s: s["bytes"] == len(data))

    t0 = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    server.wait_exit(timeout=15)
    took = time.monotonic() - t0
    check_clients_ended_cleanly(clients)
    for out in outs:
        if open(out, "rb").read() != data:
            raise Failure(f"{out}: a client did not get everything written before SIGTERM")
    server.wait_for_log(r"SIGTERM: shutting down", timeout=1)
    server.wait_for_log(r"drain time is up: closing 1 connections", timeout=1)
    stalled.close()
    log(f"exit 0 {took:.1f} s after SIGTERM; 5 clients drained, the stalled one was closed after the drain time")

    for sig in (signal.SIGTERM, signal.SIGINT):  # and with no client at all
        idle = Server(ctx.procs, ctx.exe)
        idle.wait_for_stats("the first stats line", lambda s: s["connections"] == 0)
        idle.proc.send_signal(sig)
        idle.wait_exit(timeout=5)
    log("an idle server exits 0 on SIGTERM and on SIGINT")


def tcp_state(s):
    """The kernel's TCP state of socket `s` (tcpi_state, the first byte of TCP_INFO)."""
    return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


TCP_CLOSE = 7  # the state of a socket that received a reset


def read_prefix(s, timeout=10):
    """What a client socket still holds, up to the end or a reset: (bytes, ended_by_reset)."""
    s.settimeout(timeout)
    data = b""
    try:
        while chunk := s.recv(1 << 20):
            data += chunk
    except ConnectionResetError:
        return data, True
    return data, False


def case_feed_end_drain(ctx):
    """When the feed ends, clients have --drain-timeout to receive what is queued for them; one
    that never reads is then reset and the server exits 0. The end of the feed used to wait for
    it for ever (only a signal armed the drain time)."""
    size = 16 * 1024 * 1024
    data = os.urandom(size)
    server = Server(ctx.procs, ctx.exe, "--drain-timeout", "1000", "--write-timeout", "60000")
    outs = [ctx.path(f"client{i}.out") for i in range(3)]
    clients = [ctx.proto.start_client(ctx.procs, server.port, out) for out in outs]
    stalled = ctx.proto.raw_socket(server.port, rcvbuf=4096)  # never reads: it cannot drain
    wait_for_streams(server, 4, clients)
    server.feed(data)
    # The readers have it all before the feed ends: the short drain time is for the other one.
    wait_until(lambda: all(os.path.getsize(out) >= size for out in outs), 30, "the readers to receive the feed")
    t0 = time.monotonic()  # the drain time starts later, once the server has read the end
    server.end_feed()
    server.wait_exit(timeout=20)
    took = time.monotonic() - t0
    check_clients_ended_cleanly(clients)
    for out in outs:
        if open(out, "rb").read() != data:
            raise Failure(f"{out}: a client that reads did not get the whole feed")
    server.wait_for_log(r"drain time is up: closing 1 connections", timeout=1)
    received, reset = read_prefix(stalled)
    stalled.close()
    got = ctx.proto.payload_prefix(received)
    if not reset or len(got) >= size or got != data[:len(got)]:
        raise Failure(f"the client that never read got {len(got)} bytes, reset={reset}: expected a reset "
                      f"after a prefix of the feed")
    if took < 1.0:
        raise Failure(f"the server exited {took:.2f} s after the feed's end, before its 1 s drain time")
    log(f"exit 0 {took:.1f} s after the feed's end; the client that never read got {len(got)} bytes, then a reset")


def case_write_timeout(ctx):
    """A client that takes no byte for --write-timeout ms is reset (and logged) while the feed
    goes on; the client that reads gets everything. Socket writes used to wait for ever."""
    size = 16 * 1024 * 1024
    data = os.urandom(size)
    server = Server(ctx.procs, ctx.exe, "--write-timeout", "2000")
    out = ctx.path("client.out")
    client = ctx.proto.start_client(ctx.procs, server.port, out)
    wait_for_streams(server, 1, [client])
    t_connect = time.monotonic()  # the stalled client's writes start after this
    stalled = ctx.proto.raw_socket(server.port, rcvbuf=4096)  # connects, never reads
    wait_for_streams(server, 2, [client])
    server.feed(data)
    wait_until(lambda: tcp_state(stalled) == TCP_CLOSE, 20, "the client that never reads to be reset")
    took = time.monotonic() - t_connect
    server.wait_for_log(r"gone \(it took no bytes for 2000 ms", timeout=5)
    received, reset = read_prefix(stalled)
    stalled.close()
    got = ctx.proto.payload_prefix(received)
    if not reset or len(got) >= size or got != data[:len(got)]:
        raise Failure(f"the client that never read got {len(got)} bytes, reset={reset}: expected a prefix, then a reset")
    if took < 2.0:
        raise Failure(f"the client that never read was reset {took:.2f} s after it connected, before --write-timeout")

    more = os.urandom(64 * 1024)  # the feed goes on
    server.feed(more)
    server.end_feed()
    check_clients_ended_cleanly([client])
    server.wait_exit()
    if open(out, "rb").read() != data + more:
        raise Failure("the client that reads did not get the whole feed")
    log(f"the client that never read was reset {took:.1f} s after it connected, with {len(got)} bytes")


def case_idle_shutdown(ctx):
    """HTTP: at the feed's end and at SIGTERM, connections that have not sent a (complete)
    request are closed at once, while a client of the stream still drains. They used to keep
    the server until their 10 s request timeout and its 408."""
    for how in ("the feed's end", "SIGTERM"):
        server = Server(ctx.procs, ctx.exe, "--drain-timeout", "30000")
        out = ctx.path("curl.out")
        curl = ctx.proto.start_client(ctx.procs, server.port, out)
        idle = socket.create_connection((HOST, server.port), timeout=10)  # sends nothing
        partial = socket.create_connection((HOST, server.port), timeout=10)
        partial.sendall(b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no empty line yet
        server.wait_for_stats("3 connections, 1 stream", lambda st: st["connections"] == 3 and st["streams"] == 1)
        data = os.urandom(1024 * 1024)
        server.feed(data)
        server.wait_for_stats("the data written", lambda st: st["bytes"] == len(data))
        t0 = time.monotonic()
        if how == "SIGTERM":
            server.proc.send_signal(signal.SIGTERM)
        else:
            server.end_feed()
        server.wait_exit(timeout=20)
        took = time.monotonic() - t0
        check_clients_ended_cleanly([curl])
        if open(out, "rb").read() != data:
            raise Failure(f"{how}: curl did not get the whole feed")
        for name, s in (("idle", idle), ("partial", partial)):
            got = read_until_closed(s, timeout=1)
            s.close()
            if got:
                raise Failure(f"{how}: the {name} connection got {got[:100]!r}, expected to be closed")
        if took > 5:
            raise Failure(f"{how}: the server exited {took:.1f} s later; connections without a request "
                          f"should have been closed at once")
        if server.feed_pipe and not server.feed_pipe.closed:
            server.end_feed()
        log(f"{how}: the server exited {took:.2f} s later, the connections without a request closed at once")


def http_exchange(port, request, timeout=5):
    """Sends `request` and reads until the server closes; returns (status, headers, body)."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except socket.timeout:
            raise Failure(f"{request[:60]!r}: the connection was still open after {timeout} s; "
                          f"received {data[:100]!r}") from None
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    m = re.fullmatch(r"HTTP/1\.1 (\d{3}) .*", lines[0])
    if not m:
        raise Failure(f"not an HTTP/1.1 status line in answer to {request[:40]!r}: {lines[0]!r}")
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    return int(m.group(1)), headers, body


def case_requests(ctx):
    """HTTP: 404, 405, 400, 431, 505 answers, then the connection closes; HEAD; HTTP/1.0."""
    server = Server(ctx.procs, ctx.exe)
    host = b"Host: 127.0.0.1\r\n"
    cases = [
        (b"GET /nope HTTP/1.1\r\n" + host + b"\r\n", 404),
        (b"GET / HTTP/1.1\r\n" + host + b"\r\n", 404),
        (b"POST /stream HTTP/1.1\r\n" + host + b"Content-Length: 5\r\n\r\nhello", 405),
        (b"DELETE /stream HTTP/1.1\r\n" + host + b"\r\n", 405),
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /stream\r\n" + host + b"\r\n", 400),
        (b"GET  /stream HTTP/1.1\r\n" + host + b"\r\n", 400),
        (b"GET stream HTTP/1.1\r\n" + host + b"\r\n", 400),
        (b"GET /stream HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 without Host
        (b"GET /stream HTTP/1.1\r\n" + host + host + b"\r\n", 400),
        (b"GET /stream HTTP/1.1\r\n" + host + b"No colon here\r\n\r\n", 400),
        (b"GET /stream HTTP/1.1\r\nHost : 127.0.0.1\r\n\r\n", 400),
        (b"GET /stream HTTP/1.1\r\n" + host + b" folded\r\n\r\n", 400),
        (b"GET /stream HTTP/x.y\r\n" + host + b"\r\n", 400),
        (b"\x00\x01\x02\xff\r\n\r\n", 400),
        (b"GET /stream HTTP/2.0\r\n" + host + b"\r\n", 505),
        (b"GET /stream HTTP/1.1\r\n" + host + b"X-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    ]
    for request, expected in cases:
        status, headers, body = http_exchange(server.port, request)
        if status != expected:
            raise Failure(f"{request[:50]!r}: status {status}, expected {expected}")
        if headers.get("connection") != "close" or int(headers.get("content-length", -1)) != len(body):
            raise Failure(f"{request[:50]!r}: expected Connection: close and a body of Content-Length")
        if expected == 405 and headers.get("allow") != "GET, HEAD":
            raise Failure(f"405 without 'Allow: GET, HEAD': {headers}")
    log(f"{len(cases)} bad requests answered as expected, each connection closed")

    for method, path, expected in (("GET", "/nope", "404"), ("POST", "/stream", "405")):
        code = subprocess.run(["curl", "-s", "--noproxy", "*", "-o", "/dev/null", "-w", "%{http_code}", "-X", method,
                               f"http://{HOST}:{server.port}{path}"], capture_output=True, text=True,
                              timeout=10).stdout
        if code != expected:
            raise Failure(f"curl -X {method} {path}: {code}, expected {expected}")

    status, headers, body = http_exchange(server.port, b"HEAD /stream HTTP/1.1\r\n" + host + b"\r\n")
    if status != 200 or body or headers.get("transfer-encoding") != "chunked":
        raise Failure(f"HEAD /stream: {status} {headers} {body[:20]!r}")

    # The server still serves the stream: to curl (chunked) and to an HTTP/1.0 client (raw).
    curl_out = ctx.path("curl.out")
    curl = ctx.proto.start_client(ctx.procs, server.port, curl_out)
    old = socket.create_connection((HOST, server.port), timeout=10)
    old.sendall(b"GET /stream?x=1 HTTP/1.0\r\n\r\n")
    server.wait_for_stats("2 streams", lambda s: s["streams"] == 2)
    server.feed(b"hello, ")
    server.feed(b"world\n")
    server.end_feed()
    check_clients_ended_cleanly([curl])
    data = b""
    while chunk := old.recv(65536):
        data += chunk
    old.close()
    server.wait_exit()
    head, _, body = data.partition(b"\r\n\r\n")
    if open(curl_out, "rb").read() != b"hello, world\n":
        raise Failure(f"curl got {open(curl_out, 'rb').read()!r}")
    if not head.startswith(b"HTTP/1.1 200 OK") or b"chunked" in head.lower() or body != b"hello, world\n":
        raise Failure(f"HTTP/1.0 client got {data!r}")


def read_until_closed(s, timeout=20):
    """Everything `s` receives until the peer closes (a reset ends it too)."""
    s.settimeout(timeout)
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def dechunk(body):
    """The payload of a chunked body; fails unless it ends with the last-chunk."""
    payload = b""
    while True:
        size_line, sep, body = body.partition(b"\r\n")
        if not sep:
            raise Failure(f"a chunked body without its last-chunk (at {size_line[:20]!r})")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return payload
        payload, body = payload + body[:size], body[size + 2:]


def start_curl(ctx, port, out_path, *extra):
    """curl -N of /stream (as Protocol.client_command) with extra arguments."""
    cmd = ctx.proto.client_command(port)
    return ctx.procs.start(cmd[:-1] + list(extra) + cmd[-1:], stdout=open(out_path, "wb"), stderr=subprocess.PIPE)


def wait_for_streams(server, n, clients=(), timeout=20):
    """Waits until the server counts `n` streams; fails at once when one of `clients` exits."""
    def ready(stats):
        for i, p in enumerate(clients):
            if p.poll() is not None:
                err = p.stderr.read().decode(errors="replace").strip() if p.stderr else ""
                raise Failure(f"client {i} exited with {p.returncode} before it had a stream: {err}")
        return stats["streams"] == n
    wait_until(lambda: ready(server.stats) if server.stats else False, timeout, f"{n} streams")


def case_obs_text(ctx):
    """HTTP: header values with bytes >= 0x80 (obs-text, RFC 9110 section 5.5) are accepted,
    from curl and from a raw client; control characters in a value are still 400."""
    server = Server(ctx.procs, ctx.exe)
    host = b"Host: 127.0.0.1\r\n"
    for bad in (b"X-Bad: a\x01b\r\n", b"X-Bad: a\x7fb\r\n", b"X-Bad: a\x00b\r\n"):
        status, _, _ = http_exchange(server.port, b"GET /stream HTTP/1.1\r\n" + host + bad + b"\r\n")
        if status != 400:
            raise Failure(f"a header value with a control character {bad!r}: status {status}, expected 400")

    out = ctx.path("curl.out")
    curl = start_curl(ctx, server.port, out, "-H", "X-Name: zürich")
    raw = socket.create_connection((HOST, server.port), timeout=10)
    raw.sendall(b"GET /stream HTTP/1.1\r\n" + host + b"X-Raw: \x80\xa0\xfe\xff end\r\n\r\n")
    wait_for_streams(server, 2, [curl])
    data = "Grüezi, Zürich\n".encode()
    server.feed(data)
    server.end_feed()
    check_clients_ended_cleanly([curl])
    answer = read_until_closed(raw)
    raw.close()
    server.wait_exit()
    if open(out, "rb").read() != data:
        raise Failure(f"curl -H 'X-Name: zürich' got {open(out, 'rb').read()!r}, expected {data!r}")
    head, _, body = answer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200 ") or dechunk(body) != data:
        raise Failure(f"a raw client with bytes 0x80-0xff in a header value got {answer[:200]!r}")
    log("header values with obs-text were accepted, control characters were not")


def case_head_request(ctx):
    """HTTP: HEAD /stream holds no stream. With --policy wait --queue-limit 256k, HEAD clients
    that keep their connection open (a new one every 0.5 s) used to hold the feed back for
    every GET client: each HEAD subscribed, and its stream, never read, lived on for the 2 s
    the server waits for the client's FIN."""
    server = Server(ctx.procs, ctx.exe, "--policy", "wait", "--queue-limit", "256k")
    out = ctx.path("curl.out")
    curl = ctx.proto.start_client(ctx.procs, server.port, out)
    wait_for_streams(server, 1, [curl])

    heads, answers, stop = [], [], threading.Event()

    def send_heads():
        while not stop.is_set():
            s = socket.create_connection((HOST, server.port), timeout=10)
            s.sendall(b"HEAD /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answers.append(read_until_closed(s))  # until the server's FIN after the head
            heads.append(s)  # kept open: the client does not close its side
            stop.wait(0.5)
    threading.Thread(target=send_heads, daemon=True).start()
    wait_until(lambda: answers, 20, "the first HEAD answer")

    data = os.urandom(1024 * 1024)
    size = 32 * len(data)

    def feed():
        try:
            for _ in range(size // len(data)):
                server.feed(data)
            server.end_feed()
        except OSError:
            pass  # the server is gone: the case fails on its own
    threading.Thread(target=feed, daemon=True).start()
    try:
        check_clients_ended_cleanly([curl], timeout=30)
    except Failure as e:
        raise Failure(f"{e}; it got {os.path.getsize(out)} of {size} bytes while HEAD requests came") from None
    stop.set()
    server.wait_exit()
    for s in heads:
        s.close()
    if sha256_of([out])[0] != hashlib.sha256(data * (size // len(data))).hexdigest():
        raise Failure(f"curl got {os.path.getsize(out)} bytes, not the {size} bytes fed")
    for a in answers:
        head, _, body = a.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200 ") or body:
            raise Failure(f"HEAD /stream: {a[:200]!r}")
    log(f"curl got all {size} bytes while {len(answers)} HEAD requests kept their connections open")


def case_request_forms(ctx):
    """HTTP: the absolute-form target (RFC 9112 section 3.2.2) is accepted, from curl and a raw
    client; HTTP/1.2 and later 1.x are HTTP/1.1 (chunked); a Host that is not host[:port], a
    Content-Length that is not a number and two different Content-Lengths are 400."""
    server = Server(ctx.procs, ctx.exe)
    host = b"Host: 127.0.0.1\r\n"
    get = b"GET /stream HTTP/1.1\r\n"
    nope = b"GET /nope HTTP/1.1\r\n"  # a well-formed request for it gets 404
    answers = [
        (get + b"Host: a b\r\n\r\n", 400),
        (get + b"Host: a/b\r\n\r\n", 400),
        (get + b"Host: a@b\r\n\r\n", 400),
        (get + b"Host: [::1\r\n\r\n", 400),
        (get + b"Host: a:80x\r\n\r\n", 400),
        (get + host + b"Content-Length: abc\r\n\r\n", 400),
        (get + host + b"Content-Length: -1\r\n\r\n", 400),
        (get + host + b"Content-Length: 99999999999999999999999\r\n\r\n", 400),
        (get + host + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
        (get + host + b"Content-Length: 5, 6\r\n\r\nhello!", 400),
        (b"GET /stream HTTP/1.2\r\n\r\n", 400),  # 1.2 is 1.1: Host is required
        (b"GET ftp://127.0.0.1/stream HTTP/1.1\r\n" + host + b"\r\n", 400),
        (b"GET http:///stream HTTP/1.1\r\n" + host + b"\r\n", 400),  # no host in the URI
        (b"GET http://a@127.0.0.1/stream HTTP/1.1\r\n" + host + b"\r\n", 400),
        (nope + b"Host: example.com:8080\r\n\r\n", 404),
        (nope + b"Host: [::1]:80\r\n\r\n", 404),
        (nope + b"Host:  127.0.0.1 \r\n\r\n", 404),
        (nope + b"Host:\r\n\r\n", 404),  # empty: allowed (RFC 9110 section 7.2)
        (nope + host + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 404),
        (nope + host + b"Content-Length: 5, 005\r\n\r\nhello", 404),
        (b"GET http://127.0.0.1/nope HTTP/1.1\r\n" + host + b"\r\n", 404),
        (b"GET http://127.0.0.1 HTTP/1.1\r\n" + host + b"\r\n", 404),  # the path is /
        (b"HEAD HTTP://127.0.0.1:1/stream?x HTTP/1.1\r\n" + host + b"\r\n", 200),
    ]
    for request, expected in answers:
        status, headers, _ = http_exchange(server.port, request)
        if status != expected:
            raise Failure(f"{request!r}: status {status}, expected {expected}")
    log(f"{len(answers)} requests answered as expected")

    # The stream, for an absolute-form target and for HTTP/1.2 and 1.9.
    out = ctx.path("curl.out")
    curl = start_curl(ctx, server.port, out, "--request-target", f"http://127.0.0.1:{server.port}/stream?from=curl")
    raws = []
    for request in (b"GET http://example.com/stream HTTP/1.1\r\nHost: example.com\r\n\r\n",
                    b"GET /stream HTTP/1.2\r\n" + host + b"\r\n",
                    b"GET /stream HTTP/1.9\r\n" + host + b"\r\n"):
        s = socket.create_connection((HOST, server.port), timeout=10)
        s.sendall(request)
        raws.append((request, s))
    wait_for_streams(server, 1 + len(raws), [curl])
    data = os.urandom(100 * 1024)
    server.feed(data)
    server.end_feed()
    check_clients_ended_cleanly([curl])
    if open(out, "rb").read() != data:
        raise Failure(f"curl --request-target http://...: got {os.path.getsize(out)} bytes, expected the {len(data)} fed")
    for request, s in raws:
        head, _, body = read_until_closed(s).partition(b"\r\n\r\n")
        s.close()
        if not head.startswith(b"HTTP/1.1 200 ") or b"transfer-encoding: chunked" not in head.lower():
            raise Failure(f"{request!r}: expected a chunked 200, got {head[:200]!r}")
        if dechunk(body) != data:
            raise Failure(f"{request!r}: the body is not the {len(data)} bytes fed")
    server.wait_exit()
    log("absolute-form targets and HTTP/1.2, 1.9 get the chunked stream")


def case_bad_options(ctx):
    """Bad options: usage on stderr, exit 2; --help: usage on stdout, exit 0."""
    for args in (["--policy", "sometimes"], ["--port", "70000"], ["--port"], ["--queue-limit", "12x"],
                 ["--bind", "1.2.3"], ["--rate", "-1"], ["--frobnicate"], ["--generate=yes"], ["extra"],
                 ["--fail-after", "x"], ["--archive"], ["--archive", ""], ["--archive-limit", "1m"],
                 ["--archive", "a.bin", "--archive-limit", "-1"], ["--idle-grace", "1"],
                 ["--generate", "--lazy", "--idle-grace", "-1"], ["--generate", "--lazy", "--idle-grace", "nan"],
                 ["--generate", "--lazy", "--idle-grace", "86401"], ["--generate", "--lazy=yes"],
                 ["--generate", "--lazy", "--archive", "a.bin"], ["--lazy"]):  # --lazy: stdin is not a terminal
        r = subprocess.run([ctx.exe, *args], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
        if r.returncode != 2 or "usage:" not in r.stderr:
            raise Failure(f"{args}: exit {r.returncode}, stderr {r.stderr[:200]!r}; expected 2 and the usage")
    r = subprocess.run([ctx.exe, "--help"], capture_output=True, text=True, timeout=10)
    if r.returncode != 0 or "usage:" not in r.stdout:
        raise Failure(f"--help: exit {r.returncode}, stdout {r.stdout[:200]!r}")


def case_generated_feed(ctx):
    """The generated feed: --count lines at --rate, then a clean end and exit 0."""
    count = 60
    server = Server(ctx.procs, ctx.exe, "--generate", "--rate", "20", "--count", str(count), "--replay", "64k")
    out = ctx.path("client.out")
    client = ctx.proto.start_client(ctx.procs, server.port, out)  # the replay covers a late start
    check_clients_ended_cleanly([client], timeout=20)
    server.wait_exit()
    expected = "".join(f"line {n:06d}\n" for n in range(1, count + 1))
    if open(out).read() != expected:
        raise Failure(f"expected lines 1..{count}, got {open(out).read()[:60]!r}...")


def cpu_seconds(pid):
    """User + system CPU time the process has used so far (from /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # after "pid (comm)"
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def case_rate_limits(ctx):
    """--rate takes 0 or 0.001 to 1000000 lines per second, nothing else (1e-10 used to overflow
    the pause: no pause at all, 100% CPU); the slowest rate accepted pauses, the fastest sends
    every line."""
    for rate in ("1e-10", "0.0009", "5e-324", "1000001", "1e400", "nan", "inf", "-0.5"):
        try:
            r = subprocess.run([ctx.exe, "--generate", "--rate", rate, "--count", "50"], capture_output=True,
                               text=True, timeout=10, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise Failure(f"--rate {rate} was accepted: the server still ran after 10 s") from None
        if r.returncode != 2 or "usage:" not in r.stderr or "--rate" not in r.stderr:
            raise Failure(f"--rate {rate}: exit {r.returncode}, stderr {r.stderr[:200]!r}; expected 2 and the usage")
    log("rates outside 0.001..1000000 are refused")

    # The slowest: line 1 at once, line 2 after 1000 s. Watched for 2 s after line 1 arrived.
    server = Server(ctx.procs, ctx.exe, "--generate", "--rate", "0.001", "--wait-for-clients", "1")
    out = ctx.path("slow.out")
    client = ctx.proto.start_client(ctx.procs, server.port, out)
    wait_until(lambda: os.path.getsize(out) >= 12, 20, "line 1")
    cpu_before, t0 = cpu_seconds(server.proc.pid), time.monotonic()
    time.sleep(2)  # the observation window, not a synchronisation
    used = cpu_seconds(server.proc.pid) - cpu_before
    got = open(out, "rb").read()
    if got != b"line 000001\n":
        raise Failure(f"--rate 0.001: got {got[:60]!r} within {time.monotonic() - t0:.1f} s, expected line 1 only")
    if used > 0.5:
        raise Failure(f"--rate 0.001: the server used {used:.2f} s of CPU in 2 s while it should pause")
    # Killed, not ended by SIGTERM: its line 2 is 1000 s away, and the tsan preset leaves out
    # the tests that signal a server (their names say SIGTERM).
    server.proc.kill()
    wait_exit(server.proc, 10, server.name)
    wait_exit(client, 10, "the client")
    log(f"--rate 0.001: line 1, then a pause ({used:.2f} s CPU in 2 s)")

    # The fastest: every line, in order.
    count = 100000
    server = Server(ctx.procs, ctx.exe, "--generate", "--rate", "1000000", "--count", str(count),
                    "--wait-for-clients", "1")
    out = ctx.path("fast.out")
    client = ctx.proto.start_client(ctx.procs, server.port, out)
    check_clients_ended_cleanly([client])
    server.wait_exit()
    if open(out).read() != "".join(f"line {n:06d}\n" for n in range(1, count + 1)):
        raise Failure(f"--rate 1000000: expected lines 1..{count}, got {os.path.getsize(out)} bytes")


def case_wait_for_clients(ctx):
    """A regular file on stdin with --wait-for-clients 3 (the README's `< big.iso` example):
    the feed starts once the third client is connected, so each of the three, connected one
    after another, gets all of it. Without a wait, a client connecting right after "listening"
    got only the file's tail, and one a little later was refused: the server had finished."""
    src = ctx.path("big.iso")
    with open(src, "wb") as f:
        f.write(os.urandom(20 * 1024 * 1024))
    server = Server(ctx.procs, ctx.exe, "--wait-for-clients", "3", "--policy", "wait", "--queue-limit", "1m",
                    stdin_file=src)
    outs = [ctx.path(f"client{i}.sha") for i in range(3)]
    clients = []
    for i, out in enumerate(outs):  # one after another: each connects once the one before is in
        clients.append(ctx.proto.start_hashing_client(ctx.procs, server.port, out))
        server.wait_for_log(rf"client {i + 1} \(.*\): connected")
    check_clients_ended_cleanly(clients)
    server.wait_exit()
    expected = sha256_of([src])[0]
    wrong = [i for i, out in enumerate(outs) if open(out).read().split()[0] != expected]
    if wrong:
        raise Failure(f"clients {wrong} did not receive the whole file")
    log("each of the 3 clients received the whole 20 MiB file")


def case_emfile(ctx):
    """Out of file descriptors (the server under `ulimit -n 40`, 80 connections): the accept
    loop logs the episode once when it starts and once, with a count, when it ends, instead of
    10 times a second; once connections close it accepts again and serves a new client."""
    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))
    server = Server(ctx.procs, ctx.exe, preexec=low_limit)
    held = [socket.create_connection((HOST, server.port), timeout=10) for _ in range(80)]  # the rest wait in the listen queue
    server.wait_for_log(r"accept: Too many open files")
    time.sleep(2)  # the episode's length: the unfixed server logged 10 lines a second meanwhile
    lines = server.log_matches(r"Too many open files")
    if len(lines) > 1:
        raise Failure(f"{len(lines)} log lines about 'Too many open files' while it lasted, expected 1:\n" +
                      "\n".join(lines[:5]))
    for s in held:
        s.close()
    m = server.wait_for_log(r"accept: works again after (\d+) failed accepts")
    server.wait_for_stats("the closed connections to be gone", lambda st: st["connections"] == 0)
    # Accepting the closed connections still queued fails and works by turns for a moment:
    # the same episode.
    lines = server.log_matches(r"Too many open files")
    if len(lines) != 2:
        raise Failure(f"{len(lines)} log lines about 'Too many open files', expected 2 for the episode:\n" +
                      "\n".join(lines[:10]))
    log(f"one episode, {m.group(1)} failed accepts, in two lines")

    out = ctx.path("client.out")
    client = ctx.proto.start_client(ctx.procs, server.port, out)
    wait_for_streams(server, 1, [client])
    data = os.urandom(256 * 1024)
    server.feed(data)
    server.end_feed()
    check_clients_ended_cleanly([client])
    server.wait_exit()
    if open(out, "rb").read() != data:
        raise Failure("the client that came after the episode did not get the feed")


def case_client_sends(ctx):
    """A client that sends more than 64 KiB (on TCP at all, on HTTP after its request) is
    closed: a client of these servers only receives. The server used to read and discard it for
    ever, 1 KiB a read (2.5 s of CPU per 3 s under a flood). A reader meanwhile gets the feed."""
    server = Server(ctx.procs, ctx.exe)
    out = ctx.path("client.out")
    client = ctx.proto.start_client(ctx.procs, server.port, out)
    flooder = ctx.proto.raw_socket(server.port)  # HTTP: it sent its GET /stream
    wait_for_streams(server, 2, [client])
    block, sent, limit = b"x" * 65536, 0, 256 * 1024 * 1024
    try:
        while sent < limit:
            flooder.sendall(block)
            sent += len(block)
    except (ConnectionResetError, BrokenPipeError):
        pass
    except socket.timeout:
        raise Failure(f"the server stopped reading after {sent} bytes, but did not close the connection") from None
    flooder.close()
    if sent >= limit:
        raise Failure(f"the server took all {limit} bytes a client sent")
    server.wait_for_log(r"gone \(it sent more than 65536 bytes")
    log(f"the flooding client was reset after sending {sent} bytes")

    data = os.urandom(256 * 1024)
    server.feed(data)
    server.end_feed()
    check_clients_ended_cleanly([client])
    server.wait_exit()
    if open(out, "rb").read() != data:
        raise Failure("the reader did not get the feed")


def case_half_close(ctx):
    """A client that shuts down its sending side (`nc -N`: on HTTP right after its request) is
    taken as gone, as the READMEs say: TCP cannot tell that FIN from the one of a client that
    exited (a killed curl sends the same), and a quiet feed would keep every vanished client's
    stream. It is closed at once with at most the response head; a reader still gets the feed."""
    server = Server(ctx.procs, ctx.exe)
    out = ctx.path("reader.out")
    reader = ctx.proto.start_client(ctx.procs, server.port, out)
    wait_for_streams(server, 1, [reader])
    request = b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" if ctx.proto.name == "http" else b""
    half = ctx.procs.start(["nc", "-N", HOST, str(server.port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
    try:
        got, _ = half.communicate(request, timeout=10)  # its stdin ends after the request: nc -N half-closes
    except subprocess.TimeoutExpired:
        raise Failure("the half-closed nc -N was still connected after 10 s") from None
    head, _, body = got.partition(b"\r\n\r\n")
    if body or (ctx.proto.name == "tcp" and got) or (ctx.proto.name == "http" and got and not head.startswith(b"HTTP/1.1 200 ")):
        raise Failure(f"nc -N got {got[:200]!r}, expected at most the response head")
    server.wait_for_log(r"gone \(closed by the client\)")

    data = os.urandom(64 * 1024)
    server.feed(data)
    server.end_feed()
    check_clients_ended_cleanly([reader])
    server.wait_exit()
    if open(out, "rb").read() != data:
        raise Failure("the reader did not get the feed")


def chunked_payload(body):
    """(payload, ended): the payload of a chunked body, and whether it ended with its last-chunk.
    Fails when the body stops inside a chunk: the server ends a response between chunks only."""
    payload = b""
    while body:
        size_line, sep, rest = body.partition(b"\r\n")
        if not sep:
            raise Failure(f"a chunked body cut in a size line ({size_line[:20]!r})")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            if rest != b"\r\n":
                raise Failure(f"bytes after the last-chunk: {rest[:40]!r}")
            return payload, True
        if len(rest) < size + 2 or rest[size:size + 2] != b"\r\n":
            raise Failure(f"a chunked body cut inside a chunk of {size} bytes")
        payload, body = payload + rest[:size], rest[size + 2:]
    return payload, False


def case_feed_failure(ctx):
    """--fail-after: the feed fails after that many bytes (an I/O error, as from a broken disk or
    pipe), and the server closes its writer with that reason. Every client receives exactly the
    bytes fed before the failure (SHA-256), then a broken end instead of a clean one: HTTP/1.1
    clients a chunked response without its last-chunk (curl exits 18, a partial transfer), raw
    clients (TCP, HTTP/1.0) a reset instead of a FIN, sent once they acknowledged every byte. The
    server exits 1 once they have it. (A clean end stays one: every other case ends its feed
    cleanly.) Without writer.close(reason) curl exits 0 and the raw clients read a FIN, as after
    a complete feed."""
    size, fail_after = 2 * 1024 * 1024, 777777  # not a multiple of any read size
    data = os.urandom(size)
    prefix = data[:fail_after]
    server = Server(ctx.procs, ctx.exe, "--fail-after", str(fail_after))
    outs = [ctx.path(f"client{i}.out") for i in range(3)]
    clients = [ctx.proto.start_client(ctx.procs, server.port, out) for out in outs]  # nc -d or curl -N
    raws = {"raw": ctx.proto.raw_socket(server.port)}  # HTTP: GET /stream HTTP/1.1
    if ctx.proto.name == "http":
        raws["http/1.0"] = socket.create_connection((HOST, server.port), timeout=10)
        raws["http/1.0"].sendall(b"GET /stream HTTP/1.0\r\n\r\n")
    received = {}

    def read(name, s):
        received[name] = read_prefix(s, timeout=30)  # (bytes, ended by a reset)
        s.close()
    readers = [threading.Thread(target=read, args=item, daemon=True) for item in raws.items()]
    for t in readers:
        t.start()  # reading all along: a reset waits until the client has acknowledged every byte
    wait_for_streams(server, len(clients) + len(raws), clients)

    def feed():
        try:
            server.feed(data)  # the server stops reading at the failure: this blocks until it exits
        except OSError:
            pass
    threading.Thread(target=feed, daemon=True).start()
    server.wait_for_log(rf"feed failed after {fail_after} bytes")
    rc = wait_exit(server.proc, 20, server.name)
    if rc != 1:
        raise Failure(f"{server.name} exited with {rc} after the feed failed, expected 1")
    for t in readers:
        t.join(timeout=20)

    expected = hashlib.sha256(prefix).hexdigest()
    for i, (p, out) in enumerate(zip(clients, outs)):
        rc = wait_exit(p, 20, f"client {i}")
        got = open(out, "rb").read()
        if ctx.proto.name == "tcp":
            # nc stops reading when poll() reports the reset (POLLERR), and drops what its kernel
            # had received but it had not read yet: a prefix. The Python client below, which reads
            # until the error as recv() reports it, shows that every byte arrived.
            if len(got) > fail_after or got != prefix[:len(got)]:
                raise Failure(f"nc {i} received {len(got)} bytes that are not a prefix of the {fail_after} fed")
            continue
        if hashlib.sha256(got).hexdigest() != expected:
            raise Failure(f"curl {i} received {len(got)} bytes, not the {fail_after} fed before the failure")
        if rc != 18:  # CURLE_PARTIAL_FILE: the transfer ended too early
            err = p.stderr.read().decode(errors="replace").strip()
            raise Failure(f"curl {i} exited with {rc}, expected 18 (a partial transfer): {err}")
    for name, (got, reset) in received.items():
        if name == "raw" and ctx.proto.name == "http":
            head, _, body = got.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200 ") or b"transfer-encoding: chunked" not in head.lower():
                raise Failure(f"expected a chunked 200, got {head[:200]!r}")
            payload, ended = chunked_payload(body)
            if ended or reset:
                raise Failure(f"the chunked response ended with last-chunk={ended}, reset={reset}: "
                              f"expected no last-chunk, then a FIN")
        else:
            payload = ctx.proto.payload_prefix(got) if name == "raw" else got.partition(b"\r\n\r\n")[2]
            if not reset:
                raise Failure(f"the {name} client read a FIN after {len(payload)} bytes, expected a reset")
        if hashlib.sha256(payload).hexdigest() != expected:
            raise Failure(f"the {name} client received {len(payload)} bytes, not the {fail_after} fed before the failure")
    log(f"every client received the {fail_after} bytes before the failure, then a broken end: " +
        ("curl exit 18, no last-chunk, HTTP/1.0 reset" if ctx.proto.name == "http" else "a reset, not a FIN"))


def case_quiet_cut_off(ctx):
    """Under --policy disconnect, a client that never reads is cut off (reset, after a prefix of
    the feed) also when the feed goes quiet right after the burst that overflowed its queue. The
    server used to compare the client's queue from one look to the next (every 200 ms): a burst
    that ended between two looks left the client connected until --write-timeout."""
    server = Server(ctx.procs, ctx.exe, "--policy", "disconnect", "--queue-limit", "256k", "--write-timeout", "60000")
    stuck = ctx.proto.raw_socket(server.port, rcvbuf=4096)  # connects, never reads
    wait_for_streams(server, 1)
    # More than the kernel's socket buffers (about 3 MB here) and the queue limit, and short, so
    # that the cut-off and the burst's end fall between two looks (the feed is never held back).
    data = os.urandom(8 * 1024 * 1024)
    server.feed(data)  # then the feed stays open and quiet
    wait_until(lambda: tcp_state(stuck) == TCP_CLOSE, 20, "the client that never reads to be reset")
    server.wait_for_log(r"cut off: its queue overflowed", timeout=5)
    received, reset = read_prefix(stuck)
    stuck.close()
    got = ctx.proto.payload_prefix(received)
    if not reset or len(got) >= len(data) or got != data[:len(got)]:
        raise Failure(f"the client that never read got {len(got)} bytes, reset={reset}: expected a prefix, then a reset")
    server.end_feed()
    server.wait_exit()
    log(f"the client that never read was cut off after {len(got)} bytes while the feed was quiet")
def case_archive(ctx):
    """--archive: one more stream, under `wait`, writes every byte of the feed to a file while the
    clients keep --policy. A client that never reads (receive buffer 4 KiB) does not hold the
    feed back, under drop_oldest (it loses chunks) nor under disconnect (it is cut off): the
    server reads the whole feed while that client is stuck. At the feed's end the server exits 0
    with the archive complete: SHA-256 equal to the input's, flushed to disk. Then the archive is
    a pipe drained slowly (as `--archive >(gzip > feed.gz)` with a slow compressor): the feed
    goes at the archive's pace and the archive still gets every byte, while the stuck client
    holds nothing back. With one policy for every stream the stuck client would hold the feed
    back (wait), or the slow archive would lose bytes (drop_oldest, disconnect)."""
    def run(policy, size, archive, archive_done=lambda: None):
        data = os.urandom(size)
        # --write-timeout far beyond the case: the stuck client stays unless its policy drops it.
        server = Server(ctx.procs, ctx.exe, "--archive", archive, "--archive-limit", "64k", "--policy", policy,
                        "--queue-limit", "256k", "--write-timeout", "60000", "--drain-timeout", "1000")
        stuck = ctx.proto.raw_socket(server.port, rcvbuf=4096)  # connects, never reads
        server.wait_for_stats("the stuck client's stream and the archive's", lambda s: s["streams"] == 2)

        fed = threading.Event()

        def feed():
            try:
                server.feed(data)  # blocks for as long as the server does not read
                fed.set()
            except OSError:
                pass  # the server is gone: the case fails on its own
        threading.Thread(target=feed, daemon=True).start()
        if not fed.wait(timeout=40):
            raise Failure(f"{policy}: the server did not read the {size}-byte feed within 40 s: "
                          f"the client that never reads held it back")
        if policy == "disconnect":
            server.wait_for_log(r"cut off: its queue overflowed")
        elif tcp_state(stuck) == TCP_CLOSE:
            raise Failure(f"{policy}: the client that never reads was reset before the feed's end")
        server.end_feed()
        server.wait_exit(timeout=30)  # the stuck client goes after the 1 s drain time
        stuck.close()
        got = archive_done()
        if got is None:
            got = sha256_of([archive])[0]
            server.wait_for_log(rf"archive: {size} bytes in .*, flushed to disk", timeout=1)
        if got != hashlib.sha256(data).hexdigest():
            raise Failure(f"{policy}: the archive is not the {size}-byte feed")
        log(f"{policy}: the feed was read past a client that never reads, and archived byte for byte")

    for policy in ("drop_oldest", "disconnect"):
        run(policy, 32 * 1024 * 1024, ctx.path(f"{policy}.archive"))

    fifo = ctx.path("archive.fifo")
    os.mkfifo(fifo)
    archived = hashlib.sha256()

    def drain_slowly():  # at most 64 KiB every 2 ms: far slower than the feed
        with open(fifo, "rb", buffering=0) as f:  # waits until the server opens the other end
            while chunk := f.read(65536):
                archived.update(chunk)
                time.sleep(0.002)
    drainer = threading.Thread(target=drain_slowly, daemon=True)
    drainer.start()

    def pipe_done():
        drainer.join(timeout=10)  # the server closed the pipe before it exited
        if drainer.is_alive():
            raise Failure("the archive pipe was still open after the server exited")
        return archived.hexdigest()
    run("drop_oldest", 16 * 1024 * 1024, fifo, pipe_done)


def complete_lines(path):
    """The whole lines in the file a client wrote (one killed may have cut the last one)."""
    data = open(path, "rb").read()
    return data[:data.rfind(b"\n") + 1].decode().splitlines()


def line_numbers(lines, who):
    """The numbers of generated lines ("line 000042" -> 42); fails unless they follow each other."""
    numbers = []
    for line in lines:
        m = re.fullmatch(r"line (\d{6})", line)
        if not m:
            raise Failure(f"{who} got {line!r}, not a generated line")
        numbers.append(int(m.group(1)))
    if numbers and numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        raise Failure(f"{who} got lines that do not follow each other: {numbers[:5]}...{numbers[-5:]}")
    return numbers


def case_lazy(ctx):
    """--lazy with the generated feed: generation starts when the first client arrives (the
    writer's async_wait_for_streams), and pauses once none has been there for --idle-grace
    seconds (async_wait_no_streams, then the grace); a client that arrives within the grace keeps
    it going. Real clients arrive and leave (killed); the server's `feed: started` / `feed:
    paused` lines are the sync points, and what the clients receive shows the rest: the first
    client gets line 1 (nothing was generated before it), and after a pause the next client gets
    the line after the last one written before the pause (nothing was generated meanwhile)."""
    rate, count = "500", 2000
    # A pause: the first client leaves, the grace (0.2 s) passes, a second client comes.
    server = Server(ctx.procs, ctx.exe, "--generate", "--lazy", "--idle-grace", "0.2", "--rate", rate,
                    "--count", str(count))
    server.wait_for_log(r"feed: waiting for a client \(--lazy\)")
    time.sleep(0.5)  # a window: a feed that did not wait would have generated 250 lines by now
    first_out, second_out = ctx.path("first.out"), ctx.path("second.out")
    first = ctx.proto.start_client(ctx.procs, server.port, first_out)
    server.wait_for_log(r"feed: started")
    wait_until(lambda: len(complete_lines(first_out)) >= 20, 20, "20 lines for the first client")
    first.kill()
    first.wait()
    paused = int(server.wait_for_log(r"feed: paused after (\d+) bytes: no client for 0\.2 s").group(1))
    time.sleep(0.5)  # a window: a feed that did not pause would generate 250 lines meanwhile
    second = ctx.proto.start_client(ctx.procs, server.port, second_out)
    wait_until(lambda: len(server.log_matches(r"feed: started")) == 2, 20, "the feed to start again")
    check_clients_ended_cleanly([second], timeout=30)
    server.wait_exit()
    got_first = line_numbers(complete_lines(first_out), "the first client")
    got_second = line_numbers(complete_lines(second_out), "the second client")
    if not got_first or got_first[0] != 1:
        raise Failure(f"the first client's first line is {got_first[:1]}, expected line 1: "
                      f"the feed did not wait for it")
    if paused % 12 or not got_second or got_second[0] != paused // 12 + 1 or got_second[-1] != count:
        raise Failure(f"the second client got lines {got_second[:1]}..{got_second[-1:]}, expected "
                      f"{paused // 12 + 1}..{count}: the feed paused after {paused} bytes")
    log(f"paused after line {paused // 12}; the first client got lines 1..{got_first[-1]}, the second "
        f"{got_second[0]}..{count}")

    # No pause: the first client leaves, a second one comes within the grace (60 s).
    server = Server(ctx.procs, ctx.exe, "--generate", "--lazy", "--idle-grace", "60", "--rate", rate,
                    "--count", str(count // 2))
    first_out, second_out = ctx.path("first2.out"), ctx.path("second2.out")
    first = ctx.proto.start_client(ctx.procs, server.port, first_out)
    server.wait_for_log(r"feed: started")
    wait_until(lambda: len(complete_lines(first_out)) >= 20, 20, "20 lines for the first client")
    first.kill()
    first.wait()
    server.wait_for_log(r"feed: no client left; pausing in 60 s unless one comes")
    second = ctx.proto.start_client(ctx.procs, server.port, second_out)
    server.wait_for_log(r"feed: a client came within the grace period")
    check_clients_ended_cleanly([second], timeout=30)
    server.wait_exit()
    got_first = line_numbers(complete_lines(first_out), "the first client")
    got_second = line_numbers(complete_lines(second_out), "the second client")
    started, paused_lines = server.log_matches(r"feed: started"), server.log_matches(r"feed: paused")
    if len(started) != 1 or paused_lines:
        raise Failure(f"a client within the grace: {len(started)} 'feed: started', {len(paused_lines)} "
                      f"'feed: paused' lines, expected 1 and 0")
    if got_first[0] != 1 or not got_second or got_second[0] <= got_first[-1] or got_second[-1] != count // 2:
        raise Failure(f"the clients got lines {got_first[0]}..{got_first[-1]} and "
                      f"{got_second[:1]}..{got_second[-1:]}, expected 1.. and then up to {count // 2}")
    log(f"a client within the grace kept the feed going: lines 1..{got_first[-1]}, then "
        f"{got_second[0]}..{count // 2}")


def get_stats(port):
    """GET /stats with curl, parsed."""
    r = subprocess.run(["curl", "-sS", "--fail", "--max-time", "10", "--noproxy", "*", f"http://{HOST}:{port}/stats"],
                       capture_output=True, timeout=20)
    if r.returncode != 0:
        raise Failure(f"curl /stats exited with {r.returncode}: {r.stderr.decode(errors='replace').strip()}")
    try:
        return json.loads(r.stdout)
    except ValueError as e:
        raise Failure(f"GET /stats is not JSON ({e}): {r.stdout[:300]!r}") from None


def case_stats(ctx):
    """HTTP: GET /stats is a JSON object (read with curl, parsed with Python's json) with
    bytes_written, streams, and per client its policy, queued_bytes and dropped; the archive's
    stream is there too, marked as the archive. Checked against what is known by construction:
    32 MiB fed under --policy drop_oldest --queue-limit 64k, with a client that reads (curl), one
    that never reads (4 KiB receive buffer) and an archive. bytes_written is what was fed;
    streams counts the three readers; the stuck client holds at most the limit plus one chunk
    (a read of stdin: 64 KiB) and has dropped bytes (32 MiB cannot fit in its socket buffers);
    for each client sent + queued + dropped is what was written, less at most the chunk being
    written; the archive (wait, unbounded) dropped nothing. Once the stuck client leaves, streams
    and clients say so. POST /stats is 405."""
    limit, chunk = 64 * 1024, 64 * 1024
    size = 32 * 1024 * 1024
    archive = ctx.path("feed.archive")
    server = Server(ctx.procs, ctx.exe, "--policy", "drop_oldest", "--queue-limit", "64k", "--write-timeout", "60000",
                    "--archive", archive)
    out = ctx.path("reader.out")
    reader = ctx.proto.start_client(ctx.procs, server.port, out)
    stuck = ctx.proto.raw_socket(server.port, rcvbuf=4096)  # never reads
    stuck_peer = f"{HOST}:{stuck.getsockname()[1]}"
    wait_for_streams(server, 3, [reader])  # the two clients' streams and the archive's

    stats = get_stats(server.port)
    if stats["bytes_written"] != 0 or stats["streams"] != 3 or len(stats["clients"]) != 2:
        raise Failure(f"before the feed: {stats}")
    server.feed(os.urandom(size))
    server.wait_for_stats("the feed written", lambda st: st["bytes"] == size)
    stats = get_stats(server.port)
    log(f"GET /stats: {json.dumps(stats)}")
    if stats["bytes_written"] != size:
        raise Failure(f"bytes_written is {stats['bytes_written']}, {size} were fed")
    if stats["streams"] != 3 or len(stats["clients"]) != 2:
        raise Failure(f"streams {stats['streams']} and {len(stats['clients'])} clients, expected 3 streams "
                      f"(two clients and the archive) and 2 clients")
    for client in stats["clients"]:
        if client["policy"] != "drop_oldest" or client["queue_limit"] != limit:
            raise Failure(f"a client with policy {client['policy']!r}, limit {client['queue_limit']}: expected "
                          f"'drop_oldest', {limit}")
        accounted = client["sent"] + client["queued_bytes"] + client["dropped"]
        if not size - chunk <= accounted <= size:
            raise Failure(f"client {client['id']}: sent + queued + dropped = {accounted}, expected {size} less "
                          f"at most one chunk")
    by_peer = {client["peer"]: client for client in stats["clients"]}
    if stuck_peer not in by_peer:
        raise Failure(f"the client that never reads ({stuck_peer}) is not among {list(by_peer)}")
    s = by_peer[stuck_peer]
    if s["queued_bytes"] > limit + chunk or s["dropped"] == 0:
        raise Failure(f"the client that never reads: {s['queued_bytes']} bytes queued (at most {limit + chunk}), "
                      f"{s['dropped']} dropped (expected some)")
    a = stats["archive"]
    if not a or a["path"] != archive or a["policy"] != "wait" or a["queue_limit"] != 0 or a["dropped"] != 0 or \
            not size - chunk <= a["written"] + a["queued_bytes"] <= size:
        raise Failure(f"the archive: {a}")

    stuck.close()
    server.wait_for_stats("the stuck client to go", lambda st: st["streams"] == 2)
    stats = get_stats(server.port)
    if stats["streams"] != 2 or [c["peer"] for c in stats["clients"]] == [stuck_peer] or len(stats["clients"]) != 1:
        raise Failure(f"after the stuck client left: streams {stats['streams']}, clients {stats['clients']}")
    status, headers, _ = http_exchange(server.port, b"POST /stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    if status != 405 or headers.get("allow") != "GET, HEAD":
        raise Failure(f"POST /stats: {status} {headers}")
    server.end_feed()
    wait_exit(reader, 30, "the reader")
    server.wait_exit()


def case_stdin_closed(ctx):
    """Started with stdin closed (`server <&-`), the server exits 2 with a clear message unless
    it has --generate. It used to read one of Asio's own descriptors, which had become fd 0, and
    broadcast its bytes for ever."""
    def close_stdin():
        os.close(0)
    p = ctx.procs.start([ctx.exe, "--bind", HOST, "--port", "0"], preexec=close_stdin,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        raise Failure("with stdin closed and no --generate the server still ran after 10 s") from None
    err = err.decode(errors="replace")
    if p.returncode != 2 or "stdin is closed" not in err:
        raise Failure(f"with stdin closed: exit {p.returncode}, stderr {err[:300]!r}; expected 2 and 'stdin is closed'")
    log(f"stdin closed: exit 2, {err.strip()!r}")

    # With --generate a closed stdin is fine: the generated lines, exactly.
    server = Server(ctx.procs, ctx.exe, "--generate", "--rate", "0", "--count", "5", "--wait-for-clients", "1",
                    preexec=close_stdin)
    out = ctx.path("client.out")
    client = ctx.proto.start_client(ctx.procs, server.port, out)
    check_clients_ended_cleanly([client])
    server.wait_exit()
    if open(out).read() != "".join(f"line {n:06d}\n" for n in range(1, 6)):
        raise Failure(f"--generate with stdin closed: got {open(out, 'rb').read()[:80]!r}")


CASES = {
    "fanout": case_fanout,
    "replay": case_replay,
    "stalled_client": case_stalled_client,
    "abrupt_disconnect": case_abrupt_disconnect,
    "sigterm": case_sigterm,
    "requests": case_requests,
    "bad_options": case_bad_options,
    "generated_feed": case_generated_feed,
    "obs_text": case_obs_text,
    "rate_limits": case_rate_limits,
    "stdin_closed": case_stdin_closed,
    "head_request": case_head_request,
    "request_forms": case_request_forms,
    "feed_end_drain": case_feed_end_drain,
    "write_timeout": case_write_timeout,
    "wait_for_clients": case_wait_for_clients,
    "emfile": case_emfile,
    "client_sends": case_client_sends,
    "idle_shutdown": case_idle_shutdown,
    "half_close": case_half_close,
    "feed_failure": case_feed_failure,
    "quiet_cut_off": case_quiet_cut_off,
    "archive": case_archive,
    "lazy": case_lazy,
    "stats": case_stats,
}


class Context:
    def __init__(self, proto, exe, work):
        self.proto, self.exe, self.work = proto, exe, work
        self.procs = Processes()

    def path(self, name):
        return os.path.join(self.work, name)


def run_case(case, ctx):
    """Runs one case within CASE_DEADLINE, prints PASS or FAIL, stops the case's processes either
    way, and returns the exit status. redis_tests.py runs its cases with it too."""
    def too_long(signum, frame):
        raise Failure(f"the case took more than {CASE_DEADLINE} s")
    signal.signal(signal.SIGALRM, too_long)
    signal.alarm(CASE_DEADLINE)
    start = time.monotonic()
    try:
        case(ctx)
    except Failure as e:
        print(f"FAIL: {e}", flush=True)
        return 1
    finally:
        signal.alarm(0)
        ctx.procs.cleanup()
    print(f"PASS ({time.monotonic() - start:.1f} s)", flush=True)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=("tcp", "http"), required=True)
    parser.add_argument("--server", required=True, help="the tcp_fanout or http_fanout executable")
    parser.add_argument("--case", choices=sorted(CASES), required=True)
    args = parser.parse_args()
    for tool in ("nc", "curl", "sha256sum", "bash", "cat"):
        if shutil.which(tool) is None:
            print(f"FAIL: '{tool}' is not installed (Debian: apt-get install netcat-openbsd curl)", flush=True)
            return 1

    with tempfile.TemporaryDirectory(prefix=f"fanout-{args.protocol}-{args.case}-") as work:
        return run_case(CASES[args.case], Context(Protocol(args.protocol), os.path.abspath(args.server), work))


if __name__ == "__main__":
    sys.exit(main())
