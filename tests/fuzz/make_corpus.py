#!/usr/bin/env python3
"""Writes the script fuzzer's seed corpus: small scripts that reach each part of the model
(see script_fuzzer.cpp for what the operations do). Usage: make_corpus.py tests/fuzz/corpus

Byte 0 picks the writer's options: policy | limit index << 2 | replay index << 5. Then each
operation is an opcode byte (taken % 16) and its argument bytes:
  0-2   write       size (>= 250: a second byte, size = 250 + 16 * it), how
  3-5   read        a (slot, kind << 2, +64 bound to a cancellation slot, +128 big buffer), b (size)
  6     try_next    slot
  7     cancel read a (slot, type << 2: terminal, partial, total, none)
  8, 15 new stream  b (slot, +4 replay, +8 move-assign over the old one)
  9     drop stream slot
  10    close
  11    cancel write k (which of the pending, slot-bound async writes)
  12    reset writer b (only when b % 4 == 0: move-assign a new writer)
  13    second read a, b (a second read while one is pending; a plain read otherwise)
  14    empty async write how
"""
import os
import sys

UNBOUNDED, WAIT, DROP_OLDEST, DISCONNECT = range(4)
NEXT, NEXT_CHUNK, READ_SOME, READ_SOME_TWO, READ_ZERO = range(5)


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


def new_stream(slot, replay=False, assign=False):
    return [8, slot | (4 if replay else 0) | (8 if assign else 0)]


def drop(slot):
    return [9, slot]


def close():
    return [10]


def cancel_write(k=0):
    return [11, k]


def reset_writer():
    return [12, 0]


def empty_write(how=0):
    return [14, how]


SEEDS = {
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
