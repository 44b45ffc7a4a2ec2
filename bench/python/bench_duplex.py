#!/usr/bin/env python3
"""One queue handle shared by a sending and a receiving thread, next to two
handles (a send-only one and a subscriber), in one process and one run.

- wake-up: the receiving thread sleeps in recv(); the sending thread sends a
  64-byte message carrying time.perf_counter_ns() every 2 ms; the receiver
  takes the difference on arrival. Median and p99 in microseconds.
- throughput: the sender sends N 64-byte messages as fast as it can, the
  receiver receives them all; messages per second.

Before the per-direction locks, a send on a handle whose other thread
waited in recv waited for the end of that wait's 50 ms slice.

    python3 bench/python/bench_duplex.py [--quick]

Needs libshmchan (SHMCHAN_LIBRARY, an installed package, or a build tree).
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
import shmchan  # noqa: E402


def handles(name: str, shared: bool) -> tuple[shmchan.Queue, shmchan.Queue]:
    """(sender, receiver): one subscriber handle twice, or two handles."""
    rx = shmchan.Queue.create(name, role="subscriber", max_msg=64, capacity=1 << 16)
    return (rx, rx) if shared else (shmchan.Queue.open(name), rx)


def wakeup(name: str, shared: bool, n: int) -> list[float]:
    tx, rx = handles(name, shared)
    lat: list[float] = []

    def receive() -> None:
        for _ in range(n):
            sent = struct.unpack_from("<q", rx.recv(timeout=10))[0]
            lat.append((time.perf_counter_ns() - sent) / 1000)

    t = threading.Thread(target=receive)
    t.start()
    pad = bytes(56)
    for _ in range(n):
        time.sleep(0.002)  # the receiver is asleep in recv by then
        tx.send(struct.pack("<q", time.perf_counter_ns()) + pad)
    t.join()
    for q in {id(tx): tx, id(rx): rx}.values():
        q.close()
    shmchan.unlink(name)
    return lat


def throughput(name: str, shared: bool, n: int) -> float:
    tx, rx = handles(name, shared)
    msg = bytes(64)

    def receive() -> None:
        for _ in range(n):
            rx.recv(timeout=10)

    t = threading.Thread(target=receive)
    began = time.perf_counter()
    t.start()
    for _ in range(n):
        tx.send(msg, timeout=10)
    t.join()
    took = time.perf_counter() - began
    for q in {id(tx): tx, id(rx): rx}.values():
        q.close()
    shmchan.unlink(name)
    return n / took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    nw, nt = (100, 20000) if a.quick else (500, 200000)
    name = f"bench-duplex-{os.getpid()}"
    print(f"backend {shmchan.backend}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print("| handles | wake-up median us | wake-up p99 us | throughput msgs/s |")
    print("|---|---|---|---|")
    res = {}
    for shared in (True, False):
        lat = sorted(wakeup(name, shared, nw))
        thr = throughput(name, shared, nt)
        res[shared] = (statistics.median(lat), lat[int(0.99 * (len(lat) - 1))], thr)
        label = "one, two threads" if shared else "two (send-only + subscriber)"
        print(f"| {label} | {res[shared][0]:.1f} | {res[shared][1]:.1f} | {thr:,.0f} |")
    print(f"one handle / two handles: wake-up median {res[True][0] / res[False][0]:.2f} x, "
          f"throughput {res[True][2] / res[False][2]:.2f} x")


if __name__ == "__main__":
    main()
