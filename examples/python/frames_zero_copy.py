#!/usr/bin/env python3
"""Large binary frames between processes without copying them through Python.

The writer fills each frame directly in shared memory (Latest.begin() or
Queue.reserve() hand out a writable memoryview over it; a camera driver or
file.readinto() would write there the same way), and the reader processes it
in place (Latest.view() or Queue.peek() hand out a read-only memoryview; here
zlib.crc32 reads the shared memory directly). No bytes object of the frame
is ever made.

    python3 frames_zero_copy.py demo [--queue] [--frames 50] [--size 8388608]
    python3 frames_zero_copy.py writer --name frames [--queue] ...
    python3 frames_zero_copy.py reader --name frames [--queue] ...

With a latest-value channel (the default) a slow reader skips frames and a
frame overwritten while being processed is detected (view.check()); with
--queue every frame is delivered, and the writer waits for the reader.
Each frame is [u64 number][u32 crc32 of the payload][u32 pad][payload].
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import time
import zlib

import _path  # noqa: F401  (source checkout support)
import shmchan

HEAD = struct.Struct("<QII")
LAST = 0xFFFFFFFFFFFFFFFF  # frame number of the end marker


def make_pattern(size: int) -> bytes:
    """Something to put in frames: stands in for a camera's DMA."""
    return (bytes(range(256)) * (size // 256 + 1))[:size]


def fill(buf: memoryview, number: int, pattern: bytes) -> None:
    payload = buf[HEAD.size:]
    k = number % 251
    payload[: len(pattern) - k] = pattern[k:]  # one memcpy per slice, into shared memory
    payload[len(pattern) - k:] = pattern[:k]
    HEAD.pack_into(buf, 0, number, zlib.crc32(payload), 0)


def check(buf: memoryview) -> int:
    """Verify a frame in place; return its number."""
    number: int
    crc: int
    number, crc, _ = HEAD.unpack_from(buf, 0)
    if number != LAST and zlib.crc32(buf[HEAD.size:]) != crc:
        raise RuntimeError(f"frame {number}: bad checksum")
    return number


def writer(args: argparse.Namespace) -> None:
    size = args.size
    pattern = make_pattern(size - HEAD.size)
    start = time.perf_counter()
    if args.queue:
        with shmchan.Queue.create(args.name, max_msg=size, capacity=4 * size) as q:
            for n in range(args.frames):
                with q.reserve(size, timeout=30) as res:  # committed at the end of the block
                    fill(res.data, n, pattern)
            with q.reserve(HEAD.size, timeout=30) as res:
                HEAD.pack_into(res.data, 0, LAST, 0, 0)
    else:
        with shmchan.Latest.create(args.name, max_msg=size) as ch:
            for n in range(args.frames):
                with ch.begin(size) as res:
                    fill(res.data, n, pattern)
                time.sleep(args.interval)
            with ch.begin(HEAD.size) as res:
                HEAD.pack_into(res.data, 0, LAST, 0, 0)
    dt = time.perf_counter() - start
    mib = args.frames * size / 2**20
    print(f"writer: {args.frames} frames of {size} bytes, {mib / dt:.0f} MiB/s", flush=True)


def reader(args: argparse.Namespace) -> None:
    got = stale = 0
    if args.queue:
        with shmchan.Queue.subscribe(args.name, oldest=True) as q:
            while True:
                with q.peek(timeout=30) as v:  # released (consumed) at the end
                    n = check(v.data)
                if n == LAST:
                    break
                got += 1
    else:
        with shmchan.Latest.open(args.name) as ch:
            seq = 0
            while True:
                seq = ch.wait(after=seq, timeout=30)
                with ch.view() as v:
                    n = check(v.data)
                    if not v.valid():  # overwritten while we looked: discard
                        stale += 1
                        continue
                if n == LAST:
                    break
                got += 1
    print(f"reader: {got} frames verified in place, {stale} discarded as overwritten",
          flush=True)


def demo(args: argparse.Namespace) -> None:
    name = args.name or f"frames-{os.getpid()}"
    shmchan.unlink(name, missing_ok=True)
    common = ["--name", name, "--frames", str(args.frames), "--size", str(args.size),
              "--interval", str(args.interval)] + (["--queue"] if args.queue else [])
    # Create the channel first so that the reader can open it.
    if args.queue:
        shmchan.Queue.create(name, max_msg=args.size, capacity=4 * args.size).close()
    else:
        shmchan.Latest.create(name, max_msg=args.size).close()
    try:
        rd = subprocess.Popen([sys.executable, __file__, "reader"] + common)
        time.sleep(0.2)  # let the reader subscribe before frames flow
        wr = subprocess.Popen([sys.executable, __file__, "writer"] + common)
        rc = wr.wait() | rd.wait()
    finally:
        shmchan.unlink(name, missing_ok=True)
    if rc:
        raise SystemExit(rc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("role", choices=["demo", "writer", "reader"])
    ap.add_argument("--name", default="", help="channel name (demo: a fresh one)")
    ap.add_argument("--queue", action="store_true", help="use a queue (every frame delivered)")
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--size", type=int, default=8 << 20, help="frame bytes (default 8 MiB)")
    ap.add_argument("--interval", type=float, default=0.01,
                    help="latest-value writer: seconds between frames")
    args = ap.parse_args()
    if args.role != "demo" and not args.name:
        ap.error("--name is required")
    {"demo": demo, "writer": writer, "reader": reader}[args.role](args)


if __name__ == "__main__":
    main()
