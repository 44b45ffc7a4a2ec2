#!/usr/bin/env python3
"""Python-to-Python benchmark: shmchan next to multiprocessing and the recipe.

Two Python processes (pinned to different CPUs when there are two) exchange
64-byte messages through each transport, in one run:

- round trip: the client sends, the server echoes, the client waits for the
  echo; median and p99 over many iterations after a warm-up;
- throughput: the client sends N messages one way as fast as it can, the
  server receives them and acknowledges the last; messages the server got
  per second (for the lossy ones, latest-value and the recipe, fewer than
  were sent: the table says how many), and the CPU time both processes
  (all their threads) spent per message meanwhile (clock_getcpuclockid, where
  the system has it): on a loaded machine the messages per
  second measure the scheduler as much as the transport, the CPU time per
  message much less so. The one-call-per-message rows of shmchan queues and
  pyzmq run 5 x N messages a round: at millions of messages a second, N alone
  lasts a few tens of milliseconds, where one time slice lost or one phase
  of the two loops decides the figure.

Transports: shmchan latest-value channels and queues (copying recv,
recv_batch, and send_many with recv_batch), pyzmq PUSH/PULL over ipc:// (when
pyzmq, Debian's python3-zmq, is installed; high-water marks of as many
messages as the queue's ring holds), multiprocessing.Pipe,
multiprocessing.Queue, and the recipe's mmap polling (a 1024-byte shared
file both sides busy-poll; lossy and torn reads possible, so its throughput
counts what the reader saw).

    python3 bench/python/bench_python.py            # about a minute
    python3 bench/python/bench_python.py --quick    # a few seconds
    python3 bench/python/bench_python.py --pmqos    # hold /dev/cpu_dma_latency at 0
    python3 bench/python/bench_python.py --check    # exit 1 if a target is missed
    python3 bench/python/bench_python.py --per-call # the binding's own cost per call

Prints a Markdown table with ratios and whether the binding's targets hold,
one call per message: queue send + recv at least 2 M msgs/s and at least
4 x pyzmq PUSH/PULL; round trip (latest-value and queue) at most 2 us and at
least 30 x faster than multiprocessing.Pipe's; queue throughput at least 5 x
multiprocessing.Queue's. Needs libshmchan (SHMCHAN_LIBRARY, an installed
package, or a build tree); pyzmq is optional. The header line says whether the
compiled module (shmchan.backend "native") or ctypes served the calls.
"""

from __future__ import annotations

import argparse
import mmap
import multiprocessing as mp
import os
import platform
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
try:
    import shmchan
except ImportError:
    sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
    import shmchan

MSG = 64
STOP = 0xFFFFFFFFFFFFFFFF
Q = struct.Struct("<Q")
now = time.perf_counter_ns
# spawn, not fork: shmchan handles must not cross fork(), and it is the
# portable default.
CTX = mp.get_context("spawn")


def message(i: int) -> bytes:
    return Q.pack(i) * (MSG // 8)  # a torn read mixes two counters


POOL = 1 << 16
# The shmchan queues' ring, and pyzmq's high-water marks for as many messages
# (its default, 1000 a socket, made its sender wait more often: about 25 %
# fewer messages a second): the same buffering for both.
QUEUE_BYTES = 1 << 20
ZMQ_HWM = QUEUE_BYTES // MSG


def stream(n: int) -> list[bytes]:
    """n messages to send one way: counters 0, 1, ... up to POOL, then the
    same objects again (a long run holds references, not n objects); the
    receivers of these rows only count."""
    pool = [message(i) for i in range(min(n, POOL))]
    return (pool * (n // len(pool) + 1))[:n] if pool else []


def process_cpu_ns(pid: int) -> Optional[int]:
    """CPU time of all threads of process pid so far, in ns, up to date also
    while it runs (POSIX clock_getcpuclockid), or None where unavailable."""
    if pid == os.getpid():
        return time.process_time_ns()
    try:
        import ctypes
        import ctypes.util
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        clock = ctypes.c_int()
        if libc.clock_getcpuclockid(ctypes.c_int(pid), ctypes.byref(clock)) != 0:
            return None
        return time.clock_gettime_ns(clock.value)
    except (AttributeError, OSError, TypeError):
        return None


class Clock:
    """Wall time and the CPU time of this process and the server's around a
    throughput client's timed part."""

    def __init__(self, server_pid: Optional[int]) -> None:
        self.pids = [os.getpid()] + ([server_pid] if server_pid else [])
        self.secs = 0.0
        self.cpu_ns: Optional[int] = None

    def _cpu(self) -> Optional[int]:
        parts = [process_cpu_ns(p) for p in self.pids]
        return None if None in parts or len(parts) < 2 else sum(p or 0 for p in parts)

    def start(self) -> None:
        self._c0 = self._cpu()
        self._t0 = now()

    def stop(self) -> None:
        t1 = now()
        c1 = self._cpu()
        self.secs = (t1 - self._t0) / 1e9
        if self._c0 is not None and c1 is not None:
            self.cpu_ns = c1 - self._c0


def ping_pong(send: Any, recv: Any, warm: int, n: int) -> list[int]:
    """Time warm + n round trips of send(message) then recv(), keeping the
    last n; then send the STOP message and take its answer."""
    out = []
    for i in range(warm + n):
        msg = message(i)
        t0 = now()
        send(msg)
        recv()
        t1 = now()
        if i >= warm:
            out.append(t1 - t0)
    send(message(STOP))
    recv()
    return out


def counter(data: Any) -> int:
    return Q.unpack_from(data, 0)[0]


def pin(cpu: Optional[int]) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


def cpus() -> tuple[Optional[int], Optional[int]]:
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    mine = sorted(os.sched_getaffinity(0))
    return (mine[0], mine[1]) if len(mine) >= 2 else (None, None)


# ------------------------------------------------------------- transports
# Each transport has setup() in the parent returning (client_args,
# server_args, cleanup), a server(args, mode, n) run in the child, and a
# client for round trips and one for throughput, run in the parent.


class ShmLatest:
    name = "shmchan latest"
    note = "latest-value: a reader may skip messages"

    def setup(self) -> tuple[Any, Any, Callable[[], None]]:
        base = f"pb{os.getpid()}-{time.monotonic_ns() % 100000}"
        a, b = base + "a", base + "b"
        for n in (a, b):
            shmchan.Latest.create(n, max_msg=MSG, exclusive=True).close()

        def cleanup() -> None:
            for n in (a, b):
                shmchan.unlink(n, missing_ok=True)
        return (a, b), (a, b), cleanup

    @staticmethod
    def server(args: Any, mode: str, n: int) -> None:
        a, b = args
        with shmchan.Latest.open(a) as ping, shmchan.Latest.open(b) as pong:
            seq = 0
            pong.publish(b"ready")
            if mode == "rtt":
                while True:
                    seq, data = ping.read_next(seq)
                    pong.publish(data)
                    if counter(data) == STOP:
                        return
            else:
                seen = 0
                while True:
                    seq, data = ping.read_next(seq)
                    seen += 1
                    if counter(data) == n - 1:
                        pong.publish(Q.pack(seen))
                        return

    def rtt_client(self, args: Any, warm: int, n: int) -> list[int]:
        a, b = args
        out = []
        with shmchan.Latest.open(a) as ping, shmchan.Latest.open(b) as pong:
            seq, _ = pong.read_next(0, timeout=60)  # the server is ready
            for i in range(warm + n):
                msg = message(i)
                t0 = now()
                ping.publish(msg)
                seq, data = pong.read_next(seq)
                t1 = now()
                if i >= warm:
                    out.append(t1 - t0)
            ping.publish(message(STOP))
        return out

    def thr_client(self, args: Any, n: int, clock: Clock) -> int:
        a, b = args
        with shmchan.Latest.open(a) as ping, shmchan.Latest.open(b) as pong:
            msgs = [message(i) for i in range(n)]  # the server looks for counter n - 1
            publish = ping.publish
            ready, _ = pong.read_next(0, timeout=60)
            clock.start()
            for m in msgs:
                publish(m)
            _, ack = pong.read_next(ready)
            clock.stop()
        return counter(ack)


class ShmQueue:
    name = "shmchan queue"
    note = "block policy: every message delivered"
    batch = False
    thr_scale = 5

    def setup(self) -> tuple[Any, Any, Callable[[], None]]:
        base = f"pq{os.getpid()}-{time.monotonic_ns() % 100000}"
        a, b = base + "a", base + "b"
        for n in (a, b):
            shmchan.Queue.create(n, max_msg=MSG, capacity=QUEUE_BYTES, exclusive=True).close()

        def cleanup() -> None:
            for n in (a, b):
                shmchan.unlink(n, missing_ok=True)
        return (a, b), (a, b, self.batch), cleanup

    @staticmethod
    def server(args: Any, mode: str, n: int) -> None:
        a, b, batch = args
        with shmchan.Queue.subscribe(a) as inq, shmchan.Queue.open(b) as outq:
            outq.send(b"ready")
            if mode == "rtt":
                recv, send = inq.recv, outq.send
                while True:
                    data = recv()
                    send(data)
                    if counter(data) == STOP:
                        return
            elif batch:
                got = 0
                while got < n:
                    got += len(inq.recv_batch(256))
                outq.send(Q.pack(got))
            else:
                recv = inq.recv
                for _ in range(n):
                    recv()
                outq.send(Q.pack(n))

    def _open(self, args: Any) -> tuple[Any, Any]:
        a, b = args
        return shmchan.Queue.open(a), shmchan.Queue.subscribe(b, oldest=True)

    def rtt_client(self, args: Any, warm: int, n: int) -> list[int]:
        outq, inq = self._open(args)
        with outq, inq:
            self.assert_ready(inq)
            return ping_pong(outq.send, inq.recv, warm, n)

    @staticmethod
    def assert_ready(inq: Any) -> None:
        if inq.recv(timeout=60) != b"ready":
            raise RuntimeError("server did not start")

    def thr_client(self, args: Any, n: int, clock: Clock) -> int:
        outq, inq = self._open(args)
        with outq, inq:
            self.assert_ready(inq)
            send_all = self.sender(outq, stream(n))
            clock.start()
            send_all()
            ack = inq.recv(timeout=600)
            clock.stop()
        return counter(ack)

    @staticmethod
    def sender(outq: Any, msgs: list[bytes]) -> Callable[[], None]:
        """What the client's timed loop runs: one send per message."""
        def send_all() -> None:
            send = outq.send
            for m in msgs:
                send(m)
        return send_all


class ShmQueueBatch(ShmQueue):
    name = "shmchan queue, recv_batch"
    note = "receiver takes up to 256 per call"
    batch = True
    rtt = False


class ShmQueueMany(ShmQueue):
    name = "shmchan queue, send_many + recv_batch"
    note = "sender passes 256 per call, receiver takes up to 256 per call"
    batch = True
    rtt = False

    @staticmethod
    def sender(outq: Any, msgs: list[bytes]) -> Callable[[], None]:
        """256 messages per send_many call."""
        chunks = [msgs[i: i + 256] for i in range(0, len(msgs), 256)]

        def send_all() -> None:
            send_many = outq.send_many
            for c in chunks:
                send_many(c)
        return send_all


class Zmq:
    """pyzmq PUSH/PULL over ipc://, one socket pair each way."""

    name = "pyzmq PUSH/PULL (ipc)"
    note = "every message delivered"
    thr_scale = 5

    def setup(self) -> tuple[Any, Any, Callable[[], None]]:
        d = tempfile.mkdtemp(prefix="pbzmq")
        a, b = f"ipc://{d}/a", f"ipc://{d}/b"

        def cleanup() -> None:
            for f in ("a", "b"):
                try:
                    os.unlink(os.path.join(d, f))
                except OSError:
                    pass
            os.rmdir(d)
        return (a, b), (a, b), cleanup

    @staticmethod
    def server(args: Any, mode: str, n: int) -> None:
        import zmq
        a, b = args
        ctx = zmq.Context()
        inq, outq = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
        Zmq.buffers(zmq, inq, outq)
        inq.bind(a)
        outq.bind(b)
        outq.send(b"ready")
        if mode == "rtt":
            while True:
                data = inq.recv()
                outq.send(data)
                if counter(data) == STOP:
                    break
        else:
            recv = inq.recv
            for _ in range(n):
                recv()
            outq.send(Q.pack(n))
        inq.close(linger=1000)
        outq.close(linger=1000)
        ctx.term()

    @staticmethod
    def buffers(zmq: Any, *socks: Any) -> None:
        """Queue up to ZMQ_HWM messages each way, as the shmchan queue's ring."""
        for s in socks:
            s.setsockopt(zmq.SNDHWM, ZMQ_HWM)
            s.setsockopt(zmq.RCVHWM, ZMQ_HWM)

    @staticmethod
    def _open(args: Any) -> tuple[Any, Any, Any]:
        import zmq
        a, b = args
        ctx = zmq.Context()
        outq, inq = ctx.socket(zmq.PUSH), ctx.socket(zmq.PULL)
        Zmq.buffers(zmq, inq, outq)
        outq.connect(a)
        inq.connect(b)
        if inq.recv() != b"ready":
            raise RuntimeError("server did not start")
        return ctx, outq, inq

    def rtt_client(self, args: Any, warm: int, n: int) -> list[int]:
        ctx, outq, inq = self._open(args)
        out = ping_pong(outq.send, inq.recv, warm, n)
        outq.close(linger=1000)
        inq.close(linger=0)
        ctx.term()
        return out

    def thr_client(self, args: Any, n: int, clock: Clock) -> int:
        ctx, outq, inq = self._open(args)
        msgs = stream(n)
        send = outq.send
        clock.start()
        for m in msgs:
            send(m)
        ack = inq.recv()
        clock.stop()
        outq.close(linger=1000)
        inq.close(linger=0)
        ctx.term()
        return counter(ack)


def have_zmq() -> bool:
    try:
        import zmq  # noqa: F401
    except ImportError:
        return False
    return True


class MpPipe:
    name = "multiprocessing.Pipe"
    note = ""

    def setup(self) -> tuple[Any, Any, Callable[[], None]]:
        c, s = CTX.Pipe()
        return c, s, lambda: None

    @staticmethod
    def server(conn: Any, mode: str, n: int) -> None:
        if mode == "rtt":
            while True:
                data = conn.recv_bytes()
                conn.send_bytes(data)
                if counter(data) == STOP:
                    return
        recv = conn.recv_bytes
        for _ in range(n):
            recv()
        conn.send_bytes(Q.pack(n))

    def rtt_client(self, conn: Any, warm: int, n: int) -> list[int]:
        return ping_pong(conn.send_bytes, conn.recv_bytes, warm, n)

    def thr_client(self, conn: Any, n: int, clock: Clock) -> int:
        msgs = stream(n)
        send = conn.send_bytes
        clock.start()
        for m in msgs:
            send(m)
        ack = conn.recv_bytes()
        clock.stop()
        return counter(ack)


class MpQueue:
    name = "multiprocessing.Queue"
    note = ""

    def setup(self) -> tuple[Any, Any, Callable[[], None]]:
        a, b = CTX.Queue(), CTX.Queue()
        return (a, b), (a, b), lambda: None

    @staticmethod
    def server(args: Any, mode: str, n: int) -> None:
        a, b = args
        if mode == "rtt":
            while True:
                data = a.get()
                b.put(data)
                if counter(data) == STOP:
                    return
        get = a.get
        for _ in range(n):
            get()
        b.put(Q.pack(n))

    def rtt_client(self, args: Any, warm: int, n: int) -> list[int]:
        a, b = args
        out = []
        for i in range(warm + n):
            msg = message(i)
            t0 = now()
            a.put(msg)
            b.get()
            t1 = now()
            if i >= warm:
                out.append(t1 - t0)
        a.put(message(STOP))
        b.get()
        return out

    def thr_client(self, args: Any, n: int, clock: Clock) -> int:
        a, b = args
        msgs = stream(n)
        put = a.put
        clock.start()
        for m in msgs:
            put(m)
        ack = b.get()
        clock.stop()
        return counter(ack)


class RecipeMmap:
    """The recipe: a 1024-byte mmap of a file, overwritten in place, and a
    reader that polls it (here as fast as Python can, not once a second)."""

    name = "recipe: mmap polling"
    note = "both sides busy-poll; lossy"

    def setup(self) -> tuple[Any, Any, Callable[[], None]]:
        d = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
        paths = []
        for tag in "ab":
            fd, p = tempfile.mkstemp(prefix=f"recipe-{tag}-", dir=d)
            os.write(fd, b"\0" * 1024)
            os.close(fd)
            paths.append(p)

        def cleanup() -> None:
            for p in paths:
                os.unlink(p)
        return tuple(paths), tuple(paths), cleanup

    @staticmethod
    def _map(path: str) -> mmap.mmap:
        with open(path, "r+b") as f:
            return mmap.mmap(f.fileno(), 1024)

    @staticmethod
    def server(args: Any, mode: str, n: int) -> None:
        a, b = (RecipeMmap._map(p) for p in args)
        unpack = Q.unpack_from
        last = 0
        b[512:520] = Q.pack(1)  # ready
        if mode == "rtt":
            while True:
                while unpack(a, 0)[0] == last:
                    pass
                data = a[0:MSG]
                last = counter(data)
                b[0:MSG] = data
                if last == STOP:
                    return
        seen = torn = 0
        target = n  # counters 1..n
        while last != target:
            cur = unpack(a, 0)[0]
            if cur != last:
                data = a[0:MSG]
                seen += 1
                if data != Q.pack(counter(data)) * (MSG // 8):
                    torn += 1
                last = cur
        b[0:16] = struct.pack("<QQ", seen, torn + 1)

    @staticmethod
    def _await_ready(b: mmap.mmap) -> None:
        while Q.unpack_from(b, 512)[0] != 1:
            time.sleep(0.001)

    def rtt_client(self, args: Any, warm: int, n: int) -> list[int]:
        a, b = (self._map(p) for p in args)
        unpack = Q.unpack_from
        self._await_ready(b)
        out = []
        for i in range(1, warm + n + 1):
            msg = message(i)
            t0 = now()
            a[0:MSG] = msg
            while unpack(b, 0)[0] != i:
                pass
            t1 = now()
            if i > warm:
                out.append(t1 - t0)
        a[0:MSG] = message(STOP)
        while unpack(b, 0)[0] != STOP:
            pass
        return out

    def thr_client(self, args: Any, n: int, clock: Clock) -> int:
        a, b = (self._map(p) for p in args)
        msgs = [message(i) for i in range(1, n + 1)]  # distinct: the reader counts changes
        self._await_ready(b)
        clock.start()
        for m in msgs:
            a[0:MSG] = m
        while struct.unpack_from("<Q", b, 8)[0] == 0:
            pass
        clock.stop()
        seen, torn1 = struct.unpack_from("<QQ", b, 0)
        self.torn = torn1 - 1
        return seen


TRANSPORTS = [ShmLatest, ShmQueue, ShmQueueBatch, ShmQueueMany, Zmq, MpPipe, MpQueue,
              RecipeMmap]


# ----------------------------------------------------------------- runner


def _child(kind: type, args: Any, mode: str, n: int, cpu: Optional[int]) -> None:
    pin(cpu)
    kind.server(args, mode, n)


def run_one(ctx: Any, kind: type, mode: str, warm: int, n: int,
            cpu_pair: tuple[Optional[int], Optional[int]]) -> Any:
    t = kind()
    cargs, sargs, cleanup = t.setup()
    p = ctx.Process(target=_child, args=(kind, sargs, mode, n, cpu_pair[1]))
    try:
        p.start()
        if mode == "rtt":
            res = t.rtt_client(cargs, warm, n)
        else:
            clock = Clock(p.pid)
            seen = t.thr_client(cargs, n, clock)
            res = (clock.secs, seen, clock.cpu_ns)
        p.join(600)
        if p.exitcode != 0:
            raise RuntimeError(f"{kind.name} {mode}: server exited with {p.exitcode}")
        return res, t
    finally:
        if p.is_alive():
            p.kill()
        cleanup()


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what platform says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average() -> Optional[float]:
    """The 1-minute load average, where the system has one."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


# One process, no peer: what a call costs the caller when no other core
# touches the channel (the binding and the library, caches warm). The best of
# many repetitions, so that another process taking the CPU for a while does
# not count; a child interpreter per binding (SHMCHAN_PY_BACKEND), which runs
# this text on its own: its ring size is QUEUE_BYTES written out.
PER_CALL = r"""
import os, sys, time, struct
import shmchan
M, REPS = int(sys.argv[1]), int(sys.argv[2])
msgs = [struct.pack("<Q", i) * 8 for i in range(M)]
best = dict(send=1e18, recv=1e18, publish=1e18, read=1e18)
name = "pc%d" % os.getpid()
try:
    with shmchan.Queue.create(name + "q", max_msg=64, capacity=1 << 20, exclusive=True) as q, \
            shmchan.Queue.subscribe(name + "q") as s, \
            shmchan.Latest.create(name + "l", max_msg=64, exclusive=True) as ch:
        send, recv, publish, read = q.send, s.recv, ch.publish, ch.read
        for _ in range(REPS):
            t0 = time.perf_counter_ns()
            for m in msgs:
                send(m)
            t1 = time.perf_counter_ns()
            for _ in msgs:
                recv()
            t2 = time.perf_counter_ns()
            for m in msgs:
                publish(m)
            t3 = time.perf_counter_ns()
            for _ in msgs:
                read()
            t4 = time.perf_counter_ns()
            for k, dt in zip(best, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                best[k] = min(best[k], dt / M)
finally:
    for n in (name + "q", name + "l"):
        shmchan.unlink(n, missing_ok=True)
print(shmchan.backend, *(round(best[k]) for k in best))
"""


def per_call(quick: bool) -> int:
    """--per-call: the table of what each binding's calls cost in one process."""
    m, reps = (2000, 5) if quick else (10000, 30)
    pin(cpus()[0])
    print(f"## Cost of a call in one process, {MSG}-byte messages\n")
    load = load_average()
    load_s = "unknown" if load is None else f"{load:.1f}"
    print(f"Machine: {platform.machine()}, {cpu_model()}, {os.cpu_count()} CPUs, load average "
          f"{load_s}, Python {platform.python_version()}, libshmchan "
          f"{shmchan.library_version}. {m} calls in a row, best of {reps} repetitions, "
          f"ns per call (no peer: no other core touches the channel).\n")
    print("| binding | Queue.send | Queue.recv | Latest.publish | Latest.read |")
    print("|---|---:|---:|---:|---:|")
    for backend in ("native", "ctypes"):
        env = dict(os.environ, SHMCHAN_PY_BACKEND=backend)
        env["PYTHONPATH"] = os.pathsep.join(
            [os.path.dirname(os.path.dirname(shmchan.__file__))]
            + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        p = subprocess.run([sys.executable, "-c", PER_CALL, str(m), str(reps)], env=env,
                           capture_output=True, text=True)
        if p.returncode != 0:
            last = (p.stderr.strip().splitlines() or ["failed"])[-1]
            print(f"| {backend} | - | - | - | - |  ({last})")
            continue
        got, *ns = p.stdout.split()
        print(f"| {got} | " + " | ".join(f"{int(x):,}" for x in ns) + " |")
    return 0


def pct(xs: list[int], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] / 1000.0


def hold_pmqos() -> Optional[Any]:
    try:
        f = open("/dev/cpu_dma_latency", "wb", buffering=0)
        f.write(struct.pack("<i", 0))
        return f
    except OSError as e:
        print(f"note: cannot hold /dev/cpu_dma_latency ({e}); running without", file=sys.stderr)
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations: a few seconds")
    ap.add_argument("--pmqos", action="store_true",
                    help="hold a PM-QoS request of 0 on /dev/cpu_dma_latency (VMs)")
    ap.add_argument("--only", help="comma-separated substrings of transport names")
    ap.add_argument("--check", action="store_true",
                    help="exit with status 1 if a target is missed")
    ap.add_argument("--per-call", action="store_true",
                    help="instead: what one call costs in one process, each binding")
    ap.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # tests: tiny runs
    args = ap.parse_args()
    if args.per_call:
        return per_call(args.quick or args.smoke)

    if args.smoke:
        warm, rtt_n, thr_n, reps = 20, 200, 2000, 1
    elif args.quick:
        warm, rtt_n, thr_n, reps = 500, 3000, 20000, 1
    else:
        warm, rtt_n, thr_n, reps = 2000, 30000, 200000, 5
    ctx = CTX
    cpu_pair = cpus()
    pin(cpu_pair[0])
    qos = hold_pmqos() if args.pmqos else None
    kinds = [k for k in TRANSPORTS if k is not Zmq or have_zmq()]
    if not have_zmq():
        print("note: pyzmq is not installed (Debian: python3-zmq); its row is left out",
              file=sys.stderr)
    if args.only:
        keys = [k.strip() for k in args.only.split(",")]
        kinds = [k for k in kinds if any(x in k.name for x in keys)]

    # Rounds interleave the transports, so that a machine shared with other
    # work slows them alike and the ratios hold within the run.
    load0 = load_average()
    acc = {k.name: dict(kind=k, rtt=[], rates=[], sent=[], seen=[], cpu=[], torn=0)
           for k in kinds}
    for rnd in range(reps):
        for kind in kinds:
            a = acc[kind.name]
            if getattr(kind, "rtt", True):
                lat, _ = run_one(ctx, kind, "rtt", warm if rnd == 0 else warm // 4,
                                 rtt_n // reps, cpu_pair)
                a["rtt"] += lat
            count = thr_n * getattr(kind, "thr_scale", 1)
            (secs, seen, cpu_ns), t = run_one(ctx, kind, "thr", 0, count, cpu_pair)
            a["rates"].append(seen / secs)  # delivered: what the receiver got
            a["sent"].append(count / secs)
            a["seen"].append(seen / count)
            if cpu_ns is not None:
                a["cpu"].append(cpu_ns / seen)  # both processes, per message delivered
            a["torn"] += getattr(t, "torn", 0)
        print(f"  round {rnd + 1} of {reps} done", file=sys.stderr, flush=True)
    rows = {
        name: dict(kind=a["kind"], rtt=a["rtt"] or None, rate=statistics.median(a["rates"]),
                   sent=statistics.median(a["sent"]), seen=statistics.median(a["seen"]),
                   cpu=statistics.median(a["cpu"]) if a["cpu"] else None,
                   torn=a["torn"])
        for name, a in acc.items()
    }

    pipe_rtt = statistics.median(rows["multiprocessing.Pipe"]["rtt"]) / 1000 \
        if "multiprocessing.Pipe" in rows else None
    mpq_rate = rows["multiprocessing.Queue"]["rate"] if "multiprocessing.Queue" in rows else None

    print(f"## Python-to-Python, {MSG}-byte messages"
          f"{' (quick)' if args.quick else ''}\n")
    load1 = load_average()
    loads = (f"load average {load0:.1f} at the start, {load1:.1f} at the end"
             if load0 is not None and load1 is not None else "load average unknown")
    print(f"Machine: {platform.machine()}, {cpu_model()}, {os.cpu_count()} CPUs, {loads}, "
          f"{'pinned to CPUs %s and %s' % cpu_pair if cpu_pair[0] is not None else 'not pinned'}"
          f", Python {platform.python_version()}, libshmchan {shmchan.library_version} "
          f"(binding: {shmchan.backend}), "
          f"PM-QoS {'held at 0' if qos else 'not held'}. "
          f"{reps} interleaved rounds; round trip: {rtt_n} iterations in all after a "
          f"warm-up; throughput: {thr_n} messages a round ({5 * thr_n} for the shmchan "
          f"queue and pyzmq rows), median of the rounds; CPU: the time both processes' "
          f"threads ran, per message delivered.\n")
    print("| transport | round trip median (µs) | p99 (µs) | Pipe's round trip / this |"
          " throughput, delivered (msg/s) | this / multiprocessing.Queue |"
          " CPU per message (ns) | notes |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, r in rows.items():
        if r["rtt"] is not None:
            med = statistics.median(r["rtt"]) / 1000
            rtt_s = f"{med:.1f} | {pct(r['rtt'], 0.99):.1f} | "
            rtt_s += f"{pipe_rtt / med:.2f} x" if pipe_rtt else "-"
        else:
            rtt_s = "- | - | -"
        rate_s = f"{r['rate']:,.0f} | " + (f"{r['rate'] / mpq_rate:.1f} x" if mpq_rate else "-")
        rate_s += f" | {r['cpu']:,.0f}" if r["cpu"] is not None else " | -"
        note = r["kind"].note
        if r["seen"] < 0.999:
            note += (f"; the writer published {r['sent']:,.0f} msg/s, the reader saw "
                     f"{100 * r['seen']:.1f} % of them")
        if r["torn"]:
            note += f"; {r['torn']} torn reads"
        print(f"| {name} | {rtt_s} | {rate_s} | {note} |")

    verdict = 0
    print()
    # The queue's own targets need only its row (and pyzmq's, when there is one):
    # they print also when --only leaves the multiprocessing rows out.
    if "shmchan queue" in rows:
        rate = rows["shmchan queue"]["rate"]
        zmq_rate = rows.get(Zmq.name, {}).get("rate")
        ok = rate >= 2e6 and (zmq_rate is None or rate >= 4 * zmq_rate)
        verdict |= not ok
        vs = f", {rate / zmq_rate:.1f} x pyzmq PUSH/PULL" if zmq_rate else " (no pyzmq row)"
        print(f"- shmchan queue, one send and one recv per message: {rate / 1e6:.2f} M msg/s"
              f"{vs} (target >= 2 M msg/s and >= 4 x pyzmq): {'holds' if ok else 'MISSED'}")
        cpu, zmq_cpu = rows["shmchan queue"]["cpu"], rows.get(Zmq.name, {}).get("cpu")
        if cpu and zmq_cpu:
            print(f"- shmchan queue, CPU time per message (both processes): {cpu:,.0f} ns, "
                  f"{zmq_cpu / cpu:.1f} x less than pyzmq PUSH/PULL's {zmq_cpu:,.0f} ns "
                  f"(not a target: what the figures above cost, less exposed to the load)")
    if pipe_rtt and mpq_rate:
        for name in ("shmchan latest", "shmchan queue"):
            if name in rows and rows[name]["rtt"]:
                ratio = pipe_rtt / (statistics.median(rows[name]["rtt"]) / 1000)
                ok = ratio >= 2
                verdict |= not ok
                print(f"- {name} round trip: {ratio:.1f} x faster than multiprocessing.Pipe "
                      f"(target >= 2 x): {'holds' if ok else 'MISSED'}")
        for name in ("shmchan latest", "shmchan queue"):
            if name in rows and rows[name]["rtt"]:
                med = statistics.median(rows[name]["rtt"]) / 1000
                ok = med <= 2.0 and pipe_rtt / med >= 30
                verdict |= not ok
                print(f"- {name} round trip: {med:.2f} µs, {pipe_rtt / med:.0f} x faster than "
                      f"multiprocessing.Pipe (target <= 2 µs and >= 30 x): "
                      f"{'holds' if ok else 'MISSED'}")
        best = max((rows[n]["rate"] for n in rows if n.startswith("shmchan queue")),
                   default=None)
        if best:
            ratio = best / mpq_rate
            ok = ratio >= 5
            verdict |= not ok
            print(f"- shmchan queue throughput: {ratio:.1f} x multiprocessing.Queue "
                  f"(target >= 5 x): {'holds' if ok else 'MISSED'}")
    return verdict if args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
