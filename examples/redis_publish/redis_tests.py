#!/usr/bin/env python3
"""Redis tests of redis_publish and the fan-out servers' --redis feed, run by CTest (label `redis`).

    redis_tests.py --redis-server PATH --publish PATH --http PATH --tcp PATH --case NAME

Each case starts its own redis-server on a free 127.0.0.1 port (persistence off, or an
append-only file in a temporary directory where a case restarts it), the edges (http_fanout,
tcp_fanout with --redis) and real clients (curl, nc), and checks what the clients received by
content (SHA-256 and length) against the input. It talks to Redis itself through a few lines of
RESP over a socket. Every wait is bounded; every process is killed at the end.

Needs python3 (standard library only), redis-server, curl, nc and sha256sum.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from fanout_tests import (HOST, Failure, Processes, Protocol, Server, check_clients_ended_cleanly,  # noqa: E402
                          log, run_case, sha256_of, wait_exit, wait_until)

KEY = "feed"


class RedisError(Exception):
    pass


class Resp:
    """A minimal Redis client: one connection, one command at a time."""

    def __init__(self, port):
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.file = self.sock.makefile("rb")

    def __call__(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += [b"$%d\r\n" % len(a), a, b"\r\n"]
        self.sock.sendall(b"".join(out))
        return self._read()

    def _read(self):
        line = self.file.readline()
        if not line:
            raise RedisError("connection closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.file.read(n + 2)[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RedisError(f"unexpected reply {line!r}")

    def close(self):
        self.sock.close()


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Redis:
    """redis-server on `port`; `aof_dir`: an append-only file (fsync always) there, else no persistence."""

    def __init__(self, ctx, port=None, aof_dir=None):
        self.ctx, self.port, self.aof_dir = ctx, port or free_port(), aof_dir
        self.start()

    def start(self):
        persistence = ["--appendonly", "no"] if self.aof_dir is None else \
            ["--appendonly", "yes", "--appendfsync", "always", "--dir", self.aof_dir]
        self.proc = self.ctx.procs.start([self.ctx.redis_server, "--port", str(self.port), "--bind", HOST, "--save", "",
                                          *persistence], stdout=subprocess.DEVNULL)

        def ready():
            try:
                c = Resp(self.port)
                ok = c("PING") == "PONG"
                c.close()
                return ok
            except (OSError, RedisError):
                return False
        wait_until(ready, 20, f"redis-server on port {self.port}", interval=0.05)
        log(f"redis-server on port {self.port}")

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=10)
        log("redis-server killed (SIGKILL)")

    def client(self):
        return Resp(self.port)

    @property
    def address(self):
        return f"{HOST}:{self.port}"


class Context:
    def __init__(self, args, work):
        self.redis_server, self.publish, self.http, self.tcp = args.redis_server, args.publish, args.http, args.tcp
        self.work = work
        self.procs = Processes()

    def path(self, name):
        return os.path.join(self.work, name)

    def edge(self, redis, *args, proto="http", key=KEY):
        return Server(self.procs, self.http if proto == "http" else self.tcp, "--redis", redis.address, "--key", key, *args)

    def publisher(self, redis, *args, stdin=subprocess.PIPE):
        return self.procs.start([self.publish, "--redis", redis.address, "--key", KEY, *args], stdin=stdin)


def write_input(ctx, size):
    data = os.urandom(size)
    path = ctx.path("input.bin")
    with open(path, "wb") as f:
        f.write(data)
    return data, path


def check_same(src, outs):
    hashes = sha256_of([src, *outs])
    wrong = [i for i, h in enumerate(hashes[1:]) if h != hashes[0]]
    if wrong:
        sizes = [os.path.getsize(outs[i]) for i in wrong]
        raise Failure(f"clients {wrong} received other bytes (sizes {sizes}, expected {os.path.getsize(src)})")
    log(f"all {len(outs)} clients received the {os.path.getsize(src)} bytes, sha256 {hashes[0]}")


def case_publish_to_edge(ctx):
    data, src = write_input(ctx, 4 * 1024 * 1024 + 321)
    redis = Redis(ctx)
    edge = ctx.edge(redis, "--wait-for-clients", "3")
    outs = [ctx.path(f"client{i}.out") for i in range(3)]
    clients = [Protocol("http").start_client(ctx.procs, edge.port, out) for out in outs]
    edge.wait_for_log(r"redis: connected")  # after the 3 clients: the start position is settled
    with open(src, "rb") as f:
        pub = ctx.publisher(redis, stdin=f)
    if wait_exit(pub, 30, "redis_publish") != 0:
        raise Failure("redis_publish failed")
    check_clients_ended_cleanly(clients)
    edge.wait_exit()
    check_same(src, outs)
    edge.wait_for_log(r"is the end of the feed \(eof\)")


def case_two_edges(ctx):
    data, src = write_input(ctx, 3 * 1024 * 1024 + 77)
    redis = Redis(ctx)
    edges = [ctx.edge(redis, "--wait-for-clients", "2", proto=p) for p in ("http", "tcp")]
    outs, clients = [], []
    for edge, proto in zip(edges, ("http", "tcp")):
        for i in range(2):
            out = ctx.path(f"{proto}{i}.out")
            outs.append(out)
            clients.append(Protocol(proto).start_client(ctx.procs, edge.port, out))
    for edge in edges:
        edge.wait_for_log(r"redis: connected")
    with open(src, "rb") as f:
        pub = ctx.publisher(redis, "--chunk", "16k", stdin=f)
    if wait_exit(pub, 30, "redis_publish") != 0:
        raise Failure("redis_publish failed")
    check_clients_ended_cleanly(clients)
    for edge in edges:
        edge.wait_exit()
    check_same(src, outs)


def case_redis_restart(ctx):
    part_a, part_b = os.urandom(1024 * 1024), os.urandom(1024 * 1024 + 99)
    src = ctx.path("input.bin")
    with open(src, "wb") as f:
        f.write(part_a + part_b)
    aof = ctx.path("aof")
    os.mkdir(aof)
    redis = Redis(ctx, aof_dir=aof)
    edge = ctx.edge(redis, "--wait-for-clients", "1")
    out = ctx.path("client.out")
    client = Protocol("http").start_client(ctx.procs, edge.port, out)
    edge.wait_for_log(r"redis: connected")
    pub = ctx.publisher(redis, "--chunk", "16k")
    pub.stdin.write(part_a)
    pub.stdin.flush()
    wait_until(lambda: os.path.getsize(out) >= len(part_a), 20, "the client to receive part A")

    redis.kill()
    # Part B goes into the publisher while Redis is down: it retries until Redis is back.
    writer = threading.Thread(target=lambda: (pub.stdin.write(part_b), pub.stdin.close()), daemon=True)
    writer.start()
    edge.wait_for_log(r"redis: connecting to .* again")  # the edge noticed, and retries
    redis.start()
    if wait_exit(pub, 30, "redis_publish") != 0:
        raise Failure("redis_publish failed")
    check_clients_ended_cleanly([client])
    edge.wait_exit()
    check_same(src, [out])
    edge.wait_for_log(r"redis: reconnected; reading after .*, nothing lost")


def case_replay(ctx):
    redis = Redis(ctx)
    db = redis.client()
    chunks = [os.urandom(10000 + i) for i in range(13)]
    edge1 = ctx.edge(redis, "--wait-for-clients", "1")
    first = Protocol("http").start_client(ctx.procs, edge1.port, ctx.path("first.out"))
    edge1.wait_for_log(r"redis: connected")
    pub = ctx.publisher(redis)
    for i, c in enumerate(chunks[:10]):  # one entry each: the next one once Redis has it
        pub.stdin.write(c)
        pub.stdin.flush()
        wait_until(lambda: db("XLEN", KEY) == i + 1, 20, f"entry {i + 1}")
    edge1.proc.kill()  # SIGKILL: the edge dies with its replay window
    first.wait(timeout=20)

    edge2 = ctx.edge(redis, "--redis-replay", "4", "--replay", "1m")
    edge2.wait_for_log(r"redis: replaying the last 4 entries")
    edge2.wait_for_stats("the 4 replayed entries written", lambda s: s["bytes"] == sum(map(len, chunks[6:10])))
    out = ctx.path("late.out")
    late = Protocol("http").start_client(ctx.procs, edge2.port, out)
    edge2.wait_for_stats("the late client", lambda s: s["streams"] == 1)
    for c in chunks[10:]:
        pub.stdin.write(c)
        pub.stdin.flush()
    pub.stdin.close()
    if wait_exit(pub, 30, "redis_publish") != 0:
        raise Failure("redis_publish failed")
    check_clients_ended_cleanly([late])
    edge2.wait_exit()
    expected = b"".join(chunks[6:])
    got = open(out, "rb").read()
    if got != expected:
        raise Failure(f"the late client got {len(got)} bytes, expected the last 4 entries before it joined and "
                      f"the 3 after ({len(expected)} bytes)")
    log(f"the late client got the 4 replayed entries, then the 3 live ones: {len(got)} bytes")


def case_error_entry(ctx):
    redis = Redis(ctx)
    db = redis.client()
    edge = ctx.edge(redis, "--wait-for-clients", "1")
    out = ctx.path("client.out")
    client = Protocol("http").start_client(ctx.procs, edge.port, out)
    edge.wait_for_log(r"redis: connected")
    db("XADD", KEY, "*", "data", b"hello, ")
    db("XADD", KEY, "*", "data", b"world")
    db("XADD", KEY, "*", "error", "the camera fell over")
    rc = wait_exit(client, 20, "curl")
    if rc != 18:
        raise Failure(f"curl exited with {rc}, expected 18 (a transfer ended without its last chunk)")
    if open(out, "rb").read() != b"hello, world":
        raise Failure(f"curl received {open(out, 'rb').read()!r}, expected b'hello, world'")
    rc = wait_exit(edge.proc, 20, "http_fanout")
    if rc != 1:
        raise Failure(f"the edge exited with {rc}, expected 1 (the feed failed)")
    edge.wait_for_log(r"is an error: the camera fell over")


def case_gap(ctx):
    """Entries trimmed before an edge read them: while it reconnected (its connection cut while
    it was paused), or while it was only paused (no reconnect: XREAD alone would skip them)."""
    redis = Redis(ctx)
    db = redis.client()
    for key, policy, cut in (("fails", "fail", True), ("skips", "skip", True), ("paused", "fail", False)):
        edge = ctx.edge(redis, "--wait-for-clients", "1", "--on-gap", policy, key=key)
        out = ctx.path(f"{key}.out")
        client = Protocol("http").start_client(ctx.procs, edge.port, out)
        edge.wait_for_log(r"redis: connected")
        db("XADD", key, "1-1", "data", "a")
        db("XADD", key, "1-2", "data", "b")
        wait_until(lambda: os.path.getsize(out) == 2, 20, "the client to receive 'ab'")
        os.kill(edge.proc.pid, signal.SIGSTOP)  # the edge cannot read while the stream moves on
        if cut:
            db("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")  # its connection goes
        # Without the cut, 1-3 still reaches the edge: it answers the XREAD it was blocked in.
        for seq in range(3, 11):
            db("XADD", key, f"1-{seq}", "data", chr(ord("a") + seq - 1))
        db("XTRIM", key, "MAXLEN", "2")  # only 1-9 and 1-10 are left
        db("XADD", key, "1-11", "eof", "1")
        os.kill(edge.proc.pid, signal.SIGCONT)
        rc = wait_exit(client, 20, "curl")
        got = open(out, "rb").read()
        before = b"ab" if cut else b"abc"
        edge.wait_for_log(r"redis: gap: 6 entries after 1-2 are gone" if cut else r"redis: gap: 5 entries after 1-3 are gone")
        if policy == "fail":
            if rc != 18 or got != before:
                raise Failure(f"--on-gap fail: curl exited with {rc} after {got!r}, expected 18 after {before!r}")
            if wait_exit(edge.proc, 20, "the edge") != 1:
                raise Failure("--on-gap fail: the edge should exit 1")
        else:
            if rc != 0 or got != before + b"ij":
                raise Failure(f"--on-gap skip: curl exited with {rc} after {got!r}, expected 0 after {before + b'ij'!r}")
            edge.wait_exit()
        log(f"--on-gap {policy}{', connection cut' if cut else ', paused only'}: the client got {got!r}, curl exit {rc}")


def case_bad_input(ctx):
    redis = Redis(ctx)
    db = redis.client()
    db("SET", "text", "not a stream")
    edge = ctx.edge(redis, key="text")
    if wait_exit(edge.proc, 20, "the edge on a string key") != 1:
        raise Failure("an edge on a key that holds no stream should exit 1")
    edge.wait_for_log(r"key 'text' holds no stream")

    db("XADD", "odd", "*", "payload", "x")
    edge = ctx.edge(redis, "--redis-replay", "1", key="odd")
    if wait_exit(edge.proc, 20, "the edge on an entry without data") != 1:
        raise Failure("an edge fed an entry without a data field should exit 1")
    edge.wait_for_log(r"has no data, eof or error field: fields: payload")

    for args in (["--redis", redis.address], ["--redis", "localhost", "--key", KEY], ["--key", KEY],
                 ["--redis", redis.address, "--key", KEY, "--on-gap", "maybe"],
                 ["--redis", redis.address, "--key", KEY, "--generate"]):
        r = subprocess.run([ctx.http, *args], capture_output=True, timeout=20)
        if r.returncode != 2 or b"usage:" not in r.stderr:
            raise Failure(f"http_fanout {args} exited with {r.returncode}, expected 2 and the usage")
    for args in (["--redis", redis.address], ["--key", KEY], ["--redis", redis.address, "--key", KEY, "--chunk", "0"]):
        r = subprocess.run([ctx.publish, *args], capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
        if r.returncode != 2 or b"usage:" not in r.stderr:
            raise Failure(f"redis_publish {args} exited with {r.returncode}, expected 2 and the usage")
    r = subprocess.run([ctx.publish, "--redis", redis.address, "--key", "text"], capture_output=True, timeout=20,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 1 or b"WRONGTYPE" not in r.stderr:
        raise Failure(f"redis_publish to a string key exited with {r.returncode}, expected 1 and WRONGTYPE: {r.stderr!r}")
    log("bad options exit 2 with the usage; redis_publish to a key that holds no stream exits 1")

    nobody = free_port()
    edge = Server(ctx.procs, ctx.http, "--redis", f"{HOST}:{nobody}", "--key", KEY)
    edge.wait_for_log(r"connection lost \(Connection refused\)")
    edge.wait_for_log(r"redis: connecting to .* again in \d+ ms \(attempt 3\)")
    edge.proc.send_signal(signal.SIGTERM)
    edge.wait_exit()
    log("an unreachable Redis is logged and retried with back-off until SIGTERM")


def case_client_kill(ctx):
    parts = [os.urandom(3 * 1024 * 1024 + i) for i in range(3)]
    src = ctx.path("input.bin")
    with open(src, "wb") as f:
        f.write(b"".join(parts))
    redis = Redis(ctx)
    db = redis.client()
    edges = [ctx.edge(redis, "--wait-for-clients", "5") for _ in range(2)]
    outs, clients = [], []
    for e, edge in enumerate(edges):
        for i in range(5):
            outs.append(ctx.path(f"edge{e}-{i}.out"))
            clients.append(Protocol("http").start_client(ctx.procs, edge.port, outs[-1]))
    for edge in edges:
        edge.wait_for_log(r"redis: connected")
    pub = ctx.publisher(redis, "--chunk", "16k")
    sent = 0
    for n, part in enumerate(parts):
        writer = threading.Thread(target=pub.stdin.write, args=(part,), daemon=True)
        writer.start()
        if n < 2:  # every connection is cut while the part flows (or right after it)
            target = sent + len(part) // 2
            wait_until(lambda: min(map(os.path.getsize, outs)) >= target, 30, "every client to get half the part")
            killed = db("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            log(f"CLIENT KILL TYPE normal: {killed} connections cut")
        writer.join(30)
        pub.stdin.flush()
        sent += len(part)
        wait_until(lambda: min(map(os.path.getsize, outs)) >= sent, 30, "every client to get the part")
    pub.stdin.close()
    if wait_exit(pub, 30, "redis_publish") != 0:
        raise Failure("redis_publish failed")
    check_clients_ended_cleanly(clients)
    for edge in edges:
        edge.wait_exit()
    check_same(src, outs)
    for i, edge in enumerate(edges):
        if len(edge.log_matches(r"redis: reconnected; reading after .*, nothing lost")) < 2:
            raise Failure(f"edge {i} should have reconnected twice")


CASES = {name[len("case_"):]: f for name, f in globals().items() if name.startswith("case_")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--redis-server", "--publish", "--http", "--tcp"):
        parser.add_argument(name, required=True)
    parser.add_argument("--case", choices=sorted(CASES), required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix=f"redis-{args.case}-") as work:
        return run_case(CASES[args.case], Context(args, work))


if __name__ == "__main__":
    sys.exit(main())
