#!/usr/bin/env python3
"""Writes the script fuzzer's seed corpus: small scripts that reach each part of the model
(see script_fuzzer.cpp for what the operations do). Usage: make_corpus.py tests/fuzz/corpus

Byte 0 picks the writer's options: policy | limit index << 2 | replay index << 5. Then each
operation is an opcode byte (taken % 16) and its argument bytes:
  0-2   write       size (>= 250: a second byte, size = 250 + 16 * it), how
  3-5   read        a (slot, kind << 2, +64 bound to a cancellation slot, +128 big buffer), b (size)
  6     try_next    slot
  7     cancel read a (slot, type << 2: terminal, partial, total, none)
  8     new stream  b (slot, +4 replay, +8 move-assign over the old one, + policy << 4: unset,
                    wait, drop_oldest, disconnect, + limit << 6: unset, 0, 1 + the next byte,
                    LIMITS[the next byte % 8]) [, that byte for limits 2 and 3]
                    (both unset: stream() or stream(replay); otherwise stream(options))
  9     drop stream slot
  10    close
  11    cancel write k (which of the pending, slot-bound async writes)
  12    writer op   b, by b % 4 (and r = b >> 2):
                      0: reset writer (move-assign a new one)
                      1: close(reason REASONS[r % 5]) (none: close({}))
                      2: a wait for streams: async_wait_for_streams(r & 7), or with r & 8
                         async_wait_no_streams(); r & 16: bound to a cancellation slot
                      3: cancel a wait: type r % 4 (terminal, partial, total, none) of the
                         pending, slot-bound wait number r >> 2 (modulo their count)
  13    second read a, b (a second read while one is pending; a plain read otherwise)
  14    empty async write how
  15    section 7   a, by a % 4 (and r = a >> 2):
                      0: a write with sync_point: size (as opcode 0), form r % 4: write(span,
                         tag, ec), write(span, tag), write(string_view, tag), async_write(buffers,
                         tag, token), r & 4: bound to a cancellation slot
                      1: r & 1: clear_header(); else set_header of 1 + r bytes (r & 2: the
                         string_view form)
                      2: an aligned stream: b [, limit byte] as opcode 8
                      3: a stream from a position: b [, limit byte] as opcode 8, then k:
                         from_position = bytes_written() - k (at least 0); r & 16: bytes_written()
                         + 1 + k instead (refused); r & 32: aligned too (refused)
"""
import os
import sys

UNBOUNDED, WAIT, DROP_OLDEST, DISCONNECT = range(4)
NEXT, NEXT_CHUNK, READ_SOME, READ_SOME_TWO, READ_ZERO = range(5)
TERMINAL, PARTIAL, TOTAL, NONE = range(4)
LIMITS = [1, 5, 16, 40, 100, 256, 1000, 4096]  # the writer's (cfg) and a stream's by index
POLICIES = [None, "wait", "drop_oldest", "disconnect"]  # a stream's; None: the writer's
REASONS = [None, "connection_reset", "timed_out", "eof", "overflowed"]  # None: close({})


def cfg(policy, limit_index=0, replay_index=0):
    return [policy | (limit_index << 2) | (replay_index << 5)]


def write(size, how=0):
    return [0, size, how] if size < 250 else [0, 250, (size - 250) // 16, how]


def async_write(size, slot=True, form=0):
    return write(size, 4 | (16 if slot else 0) | (form << 5))


def read(slot, kind, size=16, bound=False, big=False):
    return [3, slot | (kind << 2) | (64 if bound else 0) | (128 if big else 0), size]


def second_read(slot, kind):
    return [13, slot | (kind << 2), 8]


def try_next(slot):
    return [6, slot]


def cancel_read(slot, kind=0):
    return [7, slot | (kind << 2)]


def new_stream(slot, replay=False, assign=False, policy=None, limit=None):
    """A stream; policy and limit None leave them to the writer, limit 0 is unbounded."""
    b = slot | (4 if replay else 0) | (8 if assign else 0) | POLICIES.index(policy) << 4
    if limit is None:
        return [8, b]
    if limit == 0:
        return [8, b | 1 << 6]
    if limit <= 256:
        return [8, b | 2 << 6, limit - 1]
    return [8, b | 3 << 6, LIMITS.index(limit)]


def new_stream_args(slot, replay=False, assign=False, policy=None, limit=None):
    return new_stream(slot, replay, assign, policy, limit)[1:]


def sync_write(size, form=0, bound=False):
    size_bytes = [size] if size < 250 else [250, (size - 250) // 16]
    return [15, (form | (4 if bound else 0)) << 2] + size_bytes


def set_header(r, text=False):
    """A header of 1 + r bytes (r even)."""
    return [15, 1 | (r | (2 if text else 0)) << 2]


def clear_header():
    return [15, 1 | 1 << 2]


def aligned_stream(slot, **kw):
    return [15, 2] + new_stream_args(slot, **kw)


def from_position(slot, back, ahead=False, aligned=False, **kw):
    r = (16 if ahead else 0) | (32 if aligned else 0)
    return [15, 3 | r << 2] + new_stream_args(slot, **kw) + [back]


def drop(slot):
    return [9, slot]


def close():
    return [10]


def cancel_write(k=0):
    return [11, k]


def reset_writer():
    return [12, 0]


def close_reason(reason):
    return [12, 1 | REASONS.index(reason) << 2]


def wait_for_streams(n, bound=False):
    return [12, 2 | (n | (16 if bound else 0)) << 2]


def wait_no_streams(bound=False):
    return [12, 2 | (8 | (16 if bound else 0)) << 2]


def cancel_wait(which=0, kind=TERMINAL):
    return [12, 3 | (kind | which << 2) << 2]


def empty_write(how=0):
    return [14, how]


SEEDS = {
    # Section 7. A header comes first, before a lagged gap, outside the limit; a new header for
    # new streams only; cleared.
    "header_first_then_lagged":
        cfg(DROP_OLDEST, 2) + set_header(20) + new_stream(0) + write(10) + write(10) + write(10)
        + read(0, READ_SOME, 5) + read(0, NEXT) + read(0, NEXT) + set_header(4, text=True) + new_stream(1)
        + read(0, NEXT) + clear_header() + new_stream(2) + write(3) + try_next(1) + try_next(1) + try_next(2)
        + close() + new_stream(3) + try_next(3) + try_next(3),
    # Aligned streams (after the header): live ones skip to the first sync point; after a
    # drop_oldest gap, to the next one; an aligned replay starts at the newest retained sync point,
    # or with none retained, as live.
    "aligned_live_gap_replay":
        cfg(DROP_OLDEST, 3, 5) + set_header(6) + write(5) + aligned_stream(3, replay=True) + aligned_stream(0) + write(10) + sync_write(10) + write(10)
        + sync_write(8, form=1) + write(30) + write(30) + sync_write(5, form=2) + read(0, NEXT) + read(0, NEXT)
        + aligned_stream(1, replay=True) + aligned_stream(2, replay=True, policy="wait", limit=256)
        + sync_write(12, form=3, bound=True) + write(4) + try_next(1) + read(1, READ_SOME, 3) + try_next(1)
        + read(2, NEXT) + try_next(0) + try_next(3) + try_next(3) + close() + try_next(0),
    # Resumes: inside a retained chunk (its tail first), older than the window (lagged), at the
    # end (live); ahead of bytes_written() or combined with alignment: refused.
    "from_position_resumes":
        cfg(UNBOUNDED, 0, 5) + write(40) + write(40) + write(40) + set_header(2) + from_position(0, 50)
        + from_position(1, 200) + from_position(2, 0) + from_position(3, 3, ahead=True)
        + from_position(3, 10, aligned=True) + write(7) + read(0, NEXT) + read(0, READ_SOME, 12)
        + try_next(0) + read(1, NEXT) + read(1, NEXT) + try_next(1) + try_next(2) + try_next(2)
        + from_position(3, 255, policy="drop_oldest", limit=40) + write(30) + try_next(3) + try_next(3)
        + close(),
    "unbounded_mixed_reads":
        cfg(UNBOUNDED) + new_stream(0) + new_stream(1) + write(5) + write(7, 1) + write(0)
        + read(0, NEXT) + read(1, READ_SOME, 3) + read(1, READ_SOME_TWO, 9) + try_next(0)
        + read(0, NEXT_CHUNK) + write(12, 2) + write(30, 3) + read(0, READ_ZERO) + try_next(1)
        + try_next(1) + read(1, NEXT) + empty_write() + close() + read(0, NEXT) + try_next(0)
        + read(1, READ_SOME, 40),
    # The second waiting write fits once the first is cancelled.
    "wait_parked_cancel":
        cfg(WAIT, 2) + new_stream(0) + write(10) + async_write(10) + async_write(3) + write(2)
        + cancel_write(0) + read(0, NEXT) + read(0, READ_SOME, 4) + try_next(0) + async_write(20)
        + read(0, NEXT) + close() + try_next(0),
    "wait_two_streams":
        cfg(WAIT, 3) + new_stream(0) + new_stream(1) + async_write(30) + async_write(30)
        + async_write(30, form=1) + async_write(5, form=2) + read(0, NEXT) + read(1, READ_SOME, 7)
        + read(1, READ_SOME, 50) + try_next(0) + read(0, NEXT_CHUNK) + drop(1) + read(0, NEXT)
        + try_next(0) + write(1) + close(),
    "drop_oldest_lagged":
        cfg(DROP_OLDEST, 3) + new_stream(0) + new_stream(1, assign=True) + write(30) + write(30)
        + read(0, READ_SOME, 5) + write(30) + write(30) + try_next(0) + read(0, NEXT)
        + read(1, NEXT_CHUNK) + read(1, NEXT) + write(100) + read(1, NEXT) + read(0, NEXT) + close()
        + try_next(0) + try_next(1),
    "disconnect_overflowed":
        cfg(DISCONNECT, 2) + new_stream(0) + new_stream(1) + write(10) + read(1, NEXT) + write(10)
        + write(10) + read(0, NEXT) + read(0, NEXT) + read(0, NEXT) + read(1, NEXT) + read(1, NEXT)
        + close() + read(1, READ_SOME, 8) + try_next(0),
    "replay_late_joiners":
        cfg(UNBOUNDED, 0, 5) + write(40) + write(50) + write(30) + new_stream(0, replay=True)
        + new_stream(1) + read(0, NEXT) + write(10) + try_next(1) + close() + new_stream(2, replay=True)
        + try_next(2) + try_next(2) + read(2, NEXT) + read(0, READ_SOME, 200, big=True),
    "cancel_second_read_drop":
        cfg(UNBOUNDED) + new_stream(0) + new_stream(1) + read(0, NEXT, bound=True)
        + second_read(0, NEXT_CHUNK) + try_next(0) + cancel_read(0, 0)
        + read(0, READ_SOME, 8, bound=True) + cancel_read(0, 3) + cancel_read(0, 1)
        + read(1, NEXT_CHUNK, bound=True) + drop(1) + write(9) + read(0, NEXT) + new_stream(1)
        + read(1, READ_SOME, 4) + new_stream(1, assign=True) + write(3) + try_next(1) + close(),
    "reset_writer":
        cfg(DROP_OLDEST, 1, 4) + new_stream(0) + write(4) + write(4) + reset_writer()
        + new_stream(1, replay=True) + write(6) + read(0, NEXT) + read(0, NEXT) + read(1, NEXT)
        + async_write(3) + reset_writer() + try_next(1) + try_next(1) + new_stream(2) + write(2)
        + close(),
    # Section 6: per-stream policies. A full wait stream holds the writer back; full drop_oldest
    # and disconnect streams (and an unbounded disconnect one) never do.
    "per_stream_policies_mixed":
        cfg(UNBOUNDED) + new_stream(0, policy="wait", limit=16) + new_stream(1, policy="drop_oldest", limit=16)
        + new_stream(2, policy="disconnect", limit=16) + new_stream(3, policy="disconnect", limit=0) + write(10)
        + write(10) + async_write(10) + read(0, NEXT) + read(0, READ_SOME, 4) + write(10) + try_next(1)
        + try_next(1) + read(2, NEXT) + read(2, NEXT) + read(2, READ_SOME, 8) + read(0, NEXT) + read(0, NEXT)
        + drop(0) + write(200) + write(200) + async_write(30) + read(3, NEXT) + try_next(1) + try_next(1)
        + close() + try_next(3),
    # A stream's own limit or policy over the writer's; the other one inherited.
    "per_stream_overrides_writer":
        cfg(DROP_OLDEST, 2) + new_stream(0) + new_stream(1, limit=0) + new_stream(2, policy="disconnect")
        + new_stream(3, limit=40) + write(10) + write(10) + write(10) + write(10) + write(10) + read(0, NEXT)
        + read(0, NEXT) + read(3, READ_SOME, 15) + try_next(2) + try_next(2) + try_next(2)
        + new_stream(2, assign=True, policy="wait", limit=256) + write(250) + write(10) + async_write(5)
        + read(2, NEXT) + read(2, NEXT) + new_stream(0, assign=True, policy="wait") + write(12) + async_write(12)
        + cancel_write() + read(0, READ_SOME_TWO, 5) + write(3) + close(),
    # A wait writer whose streams all drop or disconnect never waits; a stream that inherits the
    # writer's wait policy does.
    "wait_writer_with_viewers":
        cfg(WAIT, 1) + new_stream(0, policy="drop_oldest") + new_stream(1, policy="disconnect", limit=4096)
        + new_stream(2, policy="wait", limit=0) + write(20) + write(20) + write(20) + async_write(20)
        + write(4000) + write(200) + read(0, NEXT) + read(0, NEXT) + read(1, NEXT_CHUNK)
        + new_stream(3) + write(3) + write(3) + async_write(3) + async_write(2) + read(3, NEXT) + drop(3)
        + write(3) + read(1, NEXT) + read(1, NEXT) + close() + try_next(2),
    # close(reason): every read form after the backlog, a read parked at the time, later closes
    # ignored, a later stream gets the replay, then the reason.
    "close_reason_every_read":
        cfg(UNBOUNDED, 0, 4) + new_stream(0) + new_stream(1) + new_stream(2) + new_stream(3) + write(5)
        + write(7) + read(1, READ_SOME, 3) + read(3, NEXT_CHUNK, bound=True) + try_next(3) + try_next(3)
        + read(3, NEXT) + close_reason("connection_reset") + read(0, NEXT) + read(0, NEXT_CHUNK)
        + read(0, NEXT) + try_next(0) + read(1, READ_SOME_TWO, 20) + read(1, READ_SOME) + read(1, READ_ZERO)
        + try_next(2) + try_next(2) + try_next(2) + close() + close_reason("timed_out")
        + new_stream(3, replay=True) + read(3, NEXT) + read(3, READ_SOME, 2) + try_next(3) + try_next(3)
        + write(3) + async_write(3) + new_stream(2, policy="drop_oldest", limit=1) + try_next(2),
    # Reasons that look like other ends: eof (no sentinel before it), none (close({}) is close()),
    # overflowed; a waiting write gets broken_pipe.
    "close_reason_eof_none_overflowed":
        cfg(WAIT, 2) + new_stream(0) + write(10) + async_write(10) + close_reason("eof") + read(0, NEXT)
        + read(0, NEXT) + read(0, READ_SOME, 4) + try_next(0) + reset_writer() + new_stream(1) + write(3)
        + close_reason(None) + read(1, NEXT) + read(1, NEXT) + read(1, NEXT) + reset_writer()
        + new_stream(2, policy="disconnect", limit=3) + new_stream(3) + write(3) + write(3) + try_next(2)
        + close_reason("overflowed") + try_next(2) + try_next(2) + try_next(3) + try_next(3) + try_next(3),
    # async_wait_for_streams / async_wait_no_streams: satisfied already (never inline), later,
    # cancelled (and a cancellation of type none that cancels nothing), broken_pipe on close.
    "stream_waits":
        cfg(UNBOUNDED) + wait_for_streams(2, bound=True) + wait_no_streams() + wait_for_streams(0)
        + new_stream(0) + new_stream(1) + wait_no_streams(bound=True) + wait_for_streams(3, bound=True)
        + cancel_wait(0, NONE) + cancel_wait(1, PARTIAL) + drop(0) + new_stream(1, assign=True) + drop(1)
        + wait_for_streams(1) + new_stream(2, replay=True) + wait_for_streams(5, bound=True)
        + wait_no_streams(bound=True) + cancel_wait(1, TOTAL) + close() + wait_no_streams()
        + wait_for_streams(0, bound=True),
    # A stream cut off by disconnect stops counting at once (its write completes the wait for no
    # streams); a move-assigned stream joins before the old one leaves; a reset writer's waits
    # end with broken_pipe.
    "stream_waits_cut_off_and_assign":
        cfg(UNBOUNDED) + new_stream(0, policy="disconnect", limit=5) + wait_no_streams(bound=True) + write(4)
        + write(4) + read(0, NEXT) + read(0, NEXT) + new_stream(1) + wait_for_streams(2)
        + new_stream(1, assign=True, policy="wait", limit=1) + wait_for_streams(2, bound=True) + write(1)
        + async_write(1) + wait_no_streams() + drop(1) + read(0, NEXT) + reset_writer() + try_next(0),
    # Replayed chunks are queued whatever each stream's limit; the limit applies from the next write.
    "replay_per_stream_limits":
        cfg(UNBOUNDED, 0, 5) + write(30) + write(30) + write(30) + new_stream(0, replay=True, policy="wait", limit=16)
        + new_stream(1, replay=True, policy="drop_oldest", limit=40)
        + new_stream(2, replay=True, policy="disconnect", limit=40) + write(5) + async_write(10)
        + read(0, NEXT) + read(0, NEXT) + read(0, NEXT) + read(0, NEXT) + try_next(1) + try_next(1) + try_next(1)
        + try_next(2) + try_next(2) + try_next(2) + try_next(2) + read(0, NEXT) + close_reason("timed_out")
        + new_stream(3, replay=True, policy="wait", limit=1) + try_next(3) + try_next(3) + read(0, NEXT),
}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes(data))
    print(f"{len(SEEDS)} seeds written to {out}")


if __name__ == "__main__":
    main()
