"""asyncio between two Python processes (issue 13): 64 B round trip and
one-way throughput, shmchan queues (readiness handles through the loop's
add_reader) next to asyncio streams over a Unix socket and zmq.asyncio
(Debian's python3-zmq), side by side in one run.

    python3 bench/python/bench_asyncio.py [--rounds N] [--messages N]

Needs the shmchan package importable (PYTHONPATH=python, SHMCHAN_LIBRARY).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time

import shmchan

try:
    import zmq
    import zmq.asyncio
except ImportError:  # the table then says so
    zmq = None

SIZE = 64
MSG = b"x" * SIZE


# ------------------------------------------------------------ shmchan
def _q(name: str, role: str | None = None) -> shmchan.Queue:
    return shmchan.Queue(name, create=True, role=role, capacity=1 << 20, max_msg=SIZE)


async def shm_echo(ping: str, pong: str, rounds: int, ready: mp.Event) -> None:
    with _q(ping, "subscriber") as rx, _q(pong) as tx:
        ready.set()  # subscribed: the other side may send
        for _ in range(rounds):
            tx.send(await rx.recv_async())


async def shm_rtt(rx: shmchan.Queue, ping: str, rounds: int, ready: mp.Event) -> list[float]:
    with _q(ping) as tx:
        ready.wait()
        out = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            tx.send(MSG)
            await rx.recv_async()
            out.append(time.perf_counter() - t0)
        return out


async def shm_sink(name: str, n: int, ready: mp.Event) -> None:
    with _q(name, "subscriber") as rx:
        ready.set()
        got = 0
        async for _ in rx:
            got += 1
            if got == n:
                return


# -------------------------------------------------------- unix streams
async def unix_echo(path: str, rounds: int) -> None:
    done = asyncio.Event()

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        for _ in range(rounds):
            w.write(await r.readexactly(SIZE))
        await w.drain()
        done.set()

    server = await asyncio.start_unix_server(serve, path)
    await done.wait()
    server.close()


async def unix_rtt(path: str, rounds: int) -> list[float]:
    r, w = await _connect(path)
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        w.write(MSG)
        await r.readexactly(SIZE)
        out.append(time.perf_counter() - t0)
    w.close()
    return out


async def _connect(path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    for _ in range(500):
        try:
            return await asyncio.open_unix_connection(path)
        except (FileNotFoundError, ConnectionRefusedError):
            await asyncio.sleep(0.01)
    raise RuntimeError("no server")


async def unix_sink(path: str, n: int) -> None:
    done = asyncio.Event()

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.readexactly(SIZE * n)
        done.set()

    server = await asyncio.start_unix_server(serve, path)
    await done.wait()
    server.close()


# ------------------------------------------------------------- zeromq
async def zmq_echo(addr: str, rounds: int) -> None:
    ctx = zmq.asyncio.Context()
    s = ctx.socket(zmq.PAIR)
    s.bind(addr)
    for _ in range(rounds):
        await s.send(await s.recv())
    s.close(linger=1000)
    ctx.term()


async def zmq_rtt(addr: str, rounds: int) -> list[float]:
    ctx = zmq.asyncio.Context()
    s = ctx.socket(zmq.PAIR)
    s.connect(addr)
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await s.send(MSG)
        await s.recv()
        out.append(time.perf_counter() - t0)
    s.close(linger=0)
    ctx.term()
    return out


async def zmq_sink(addr: str, n: int) -> None:
    ctx = zmq.asyncio.Context()
    s = ctx.socket(zmq.PULL)
    s.bind(addr)
    for _ in range(n):
        await s.recv()
    s.close(linger=0)
    ctx.term()


# ------------------------------------------------------------ drivers
def _child(fn, *args) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(fn(*args))


def rtt(kind: str, rounds: int, tmp: str) -> float:
    tag = f"{os.getpid()}"
    if kind == "shmchan":
        ping, pong = f"ab-pi{tag}", f"ab-po{tag}"
        ready = mp.Event()
        with _q(pong, "subscriber") as rx:  # before the echo can answer
            p = mp.Process(target=_child, args=(shm_echo, ping, pong, rounds, ready))
            p.start()
            t = asyncio.run(shm_rtt(rx, ping, rounds, ready))
        shmchan.unlink(ping, missing_ok=True)
        shmchan.unlink(pong, missing_ok=True)
    elif kind == "unix":
        path = os.path.join(tmp, f"rtt{tag}.sock")
        p = mp.Process(target=_child, args=(unix_echo, path, rounds))
        p.start()
        t = asyncio.run(unix_rtt(path, rounds))
    else:
        addr = f"ipc://{tmp}/rtt{tag}.zmq"
        p = mp.Process(target=_child, args=(zmq_echo, addr, rounds))
        p.start()
        time.sleep(0.2)
        t = asyncio.run(zmq_rtt(addr, rounds))
    p.join()
    return statistics.median(t[len(t) // 10:])


def throughput(kind: str, n: int, tmp: str) -> float:
    tag = f"{os.getpid()}"
    t0 = 0.0
    if kind == "shmchan":
        name = f"ab-tp{tag}"
        ready = mp.Event()
        p = mp.Process(target=_child, args=(shm_sink, name, n, ready))
        p.start()
        ready.wait()
        with _q(name) as tx:
            t0 = time.perf_counter()
            for _ in range(n):
                tx.send(MSG)
            p.join()
        shmchan.unlink(name, missing_ok=True)
    elif kind == "unix":
        path = os.path.join(tmp, f"tp{tag}.sock")
        p = mp.Process(target=_child, args=(unix_sink, path, n))
        p.start()

        async def send() -> None:
            r, w = await _connect(path)
            for i in range(n):
                w.write(MSG)
                if i % 256 == 255:
                    await w.drain()
            await w.drain()
            w.close()

        t0 = time.perf_counter()
        asyncio.run(send())
        p.join()
    else:
        addr = f"ipc://{tmp}/tp{tag}.zmq"
        p = mp.Process(target=_child, args=(zmq_sink, addr, n))
        p.start()
        time.sleep(0.2)
        ctx = zmq.Context()
        s = ctx.socket(zmq.PUSH)
        s.connect(addr)
        t0 = time.perf_counter()
        for _ in range(n):
            s.send(MSG)
        p.join()
        s.close(linger=0)
        ctx.term()
    return n / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5000)
    ap.add_argument("--messages", type=int, default=200000)
    ap.add_argument("--csv", default=None,
                    help="append 'bench,transport,pmqos,metric,value' lines (bench/run.sh)")
    a = ap.parse_args()
    kinds = ["shmchan", "unix"] + (["zmq"] if zmq is not None else [])
    with tempfile.TemporaryDirectory() as tmp:
        r = {k: rtt(k, a.rounds, tmp) for k in kinds}
        t = {k: throughput(k, a.messages, tmp) for k in kinds}
    names = {"shmchan": "shmchan queue (recv_async, add_reader)",
             "unix": "asyncio streams, Unix socket", "zmq": "zmq.asyncio PAIR/PUSH, ipc://"}
    print(f"\nasyncio, two processes, {SIZE} B; Python {sys.version.split()[0]}, "
          f"shmchan backend {shmchan.backend}\n")
    print("| transport | RTT p50 us | RTT vs shmchan | msgs/s one way | shmchan vs it |")
    print("|---|---:|---:|---:|---:|")
    for k in kinds:
        print(f"| {names[k]} | {r[k] * 1e6:.1f} | {r[k] / r['shmchan']:.2f} | "
              f"{t[k]:.0f} | {t['shmchan'] / t[k]:.2f} |")
    if zmq is None:
        print("\n(zmq.asyncio: python3-zmq not installed)")
    if a.csv:
        with open(a.csv, "a") as f:
            for k in kinds:
                f.write(f"asyncio,{k},off,rtt_p50_ns,{r[k] * 1e9:.1f}\n")
                f.write(f"asyncio,{k},off,msgs_per_s,{t[k]:.1f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
