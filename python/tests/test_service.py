"""Services (shmchan.Service): clients and servers in separate processes,
every response checked byte for byte; streams, error answers, a server that
dies holding a request, asyncio and readiness, and the errors of misuse."""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import unittest

from support import REPO, CHILD_TIMEOUT, ChannelTest, child_env, run_python

import shmchan

# A server process: serves `count` requests (0: until killed) with a handler
# chosen by name, then exits 0. argv: name mode count
SERVER = r"""
import os, sys, shmchan
name, mode, count = sys.argv[1], sys.argv[2], int(sys.argv[3])

def echo(data):
    return b"echo:" + data

def upper_stream(data):
    for part in data.split(b" "):
        yield part.upper()

def fail(data):
    raise ValueError("cannot handle " + data.decode())

def die(data):
    os.kill(os.getpid(), 9)  # holding the request

handlers = {"echo": echo, "stream": upper_stream, "fail": fail, "die": die}
with shmchan.Service.server(name, wait=30) as s:
    print("ready", flush=True)
    s.serve(handlers[mode], count=count or None)
"""


class ServiceTest(ChannelTest):
    def start_server(self, name: str, mode: str = "echo", count: int = 0
                     ) -> subprocess.Popen[str]:
        p = subprocess.Popen([sys.executable, "-c", SERVER, name, mode, str(count)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=child_env())
        self.addCleanup(self.stop, p)
        assert p.stdout is not None
        line = p.stdout.readline().strip()
        if line != "ready":
            p.kill()
            self.fail(f"server did not start: {line!r} {p.communicate(timeout=CHILD_TIMEOUT)}")
        return p

    @staticmethod
    def stop(p: subprocess.Popen[str]) -> None:
        if p.poll() is None:
            p.kill()
        p.communicate(timeout=CHILD_TIMEOUT)

    def service(self, **kw: object) -> shmchan.Service:
        s = shmchan.Service.create(self.name(), max_msg=1024, **kw)  # type: ignore[arg-type]
        self.addCleanup(s.close)
        return s

    # ------------------------------------------------------------ calls
    def test_call_in_another_process(self) -> None:
        c = self.service()
        self.assertEqual(c.role, "client")
        self.assertEqual(c.max_msg, 1024)
        p = self.start_server(c.name, "echo", 3)
        self.assertEqual(sorted(x.role for x in c.peers()), ["client", "server"])
        self.assertEqual(sorted(x.role for x in shmchan.peers(c.name)), ["client", "server"])
        self.assertEqual((c.info().readers, c.info().writers), (1, 1))
        self.assertEqual(c.call(b"one", timeout=CHILD_TIMEOUT), b"echo:one")
        self.assertEqual(c.call(bytearray(b"\0\xff"), timeout=CHILD_TIMEOUT), b"echo:\0\xff")
        self.assertEqual(c.call(b"", timeout=CHILD_TIMEOUT), b"echo:")
        self.assertEqual(p.wait(timeout=CHILD_TIMEOUT), 0)
        self.assertEqual(shmchan.info(c.name).kind, "service")

    def test_requests_pending_together_are_matched_by_id(self) -> None:
        c = self.service()
        self.start_server(c.name, "echo", 0)
        ids = [c.request(b"r%d" % i, timeout=CHILD_TIMEOUT) for i in range(5)]
        self.assertEqual(len(set(ids)), 5)
        self.assertEqual(c.pending, 5)
        got = {}
        for _ in ids:
            r = c.response(timeout=CHILD_TIMEOUT)
            self.assertFalse(r.more or r.error)
            got[r.id] = r.data
        self.assertEqual(got, {rid: b"echo:r%d" % i for i, rid in enumerate(ids)})
        self.assertEqual(c.pending, 0)
        with self.assertRaises(shmchan.BadState):
            c.response(timeout=0)

    def test_many_clients_and_servers(self) -> None:
        name = self.name()
        shmchan.Service.create(name, max_msg=256, max_servers=3, max_clients=8).close()
        for _ in range(2):
            self.start_server(name, "echo", 0)
        client = r"""
import sys, shmchan
name, me = sys.argv[1], sys.argv[2]
with shmchan.Service.client(name) as c:
    for i in range(200):
        msg = ("%s-%d-" % (me, i)).encode() * (1 + i % 7)
        got = c.call(msg, timeout=60)
        assert got == b"echo:" + msg, (msg, got)
print("ok")
"""
        procs = [subprocess.Popen([sys.executable, "-c", client, name, str(k)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=child_env()) for k in range(3)]
        for p in procs:
            out, err = p.communicate(timeout=CHILD_TIMEOUT * 2)
            self.assertEqual((p.returncode, out.strip()), (0, "ok"), err)

    def test_cli_call_prints_each_part_of_a_stream(self) -> None:
        exe = os.environ.get("SHMCHAN_CLI") or next(
            (str(p) for p in sorted(REPO.glob("_build/*/tools/shmchan/shmchan"))), None)
        if exe is None:
            self.fail("the shmchan CLI was not found (set SHMCHAN_CLI)")
        c = self.service()
        self.start_server(c.name, "stream", 0)
        p = subprocess.run([exe, "call", c.name, "ab cd e", "--timeout", "60"],
                           capture_output=True, timeout=CHILD_TIMEOUT)
        self.assertEqual((p.returncode, p.stdout), (0, b"ABCDE"), p.stderr)
        p = subprocess.run([exe, "call", c.name, "x yz", "--json", "--timeout", "60"],
                           capture_output=True, timeout=CHILD_TIMEOUT)
        parts = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([(d["part"], d["data"], d["last"]) for d in parts],
                         [(0, "X", False), (1, "YZ", True)])
        self.assertEqual(len({d["id"] for d in parts}), 1)

    # ---------------------------------------------------- streams, errors
    def test_stream_is_an_iterator_of_parts(self) -> None:
        c = self.service()
        self.start_server(c.name, "stream", 0)
        self.assertEqual(list(c.stream(b"a bb ccc", timeout=CHILD_TIMEOUT)),
                         [b"A", b"BB", b"CCC"])
        # call() of a stream joins the parts
        self.assertEqual(c.call(b"x y", timeout=CHILD_TIMEOUT), b"XY")
        c.request(b"p q", timeout=CHILD_TIMEOUT)
        parts = [c.response(timeout=CHILD_TIMEOUT) for _ in range(2)]
        self.assertEqual([(r.data, r.more) for r in parts], [(b"P", True), (b"Q", False)])

    def test_handler_exception_is_a_remote_error(self) -> None:
        c = self.service()
        self.start_server(c.name, "fail", 0)
        with self.assertRaises(shmchan.RemoteError) as cm:
            c.call(b"this", timeout=CHILD_TIMEOUT)
        self.assertEqual(cm.exception.body, b"ValueError: cannot handle this")
        self.assertIn("cannot handle this", str(cm.exception))
        c.request(b"that", timeout=CHILD_TIMEOUT)
        r = c.response(timeout=CHILD_TIMEOUT)
        self.assertTrue(r.error)
        self.assertEqual(r.data, b"ValueError: cannot handle that")
        # the server goes on serving after an error answer
        with self.assertRaises(shmchan.RemoteError):
            c.call(b"again", timeout=CHILD_TIMEOUT)

    def test_server_dying_with_the_request_is_peer_died(self) -> None:
        c = self.service()
        p = self.start_server(c.name, "die", 0)
        # Not a timing check: a long timeout, and the error must be PeerDied
        # (the library notices the dead holder), not TimedOut.
        with self.assertRaises(shmchan.PeerDied) as cm:
            c.call(b"x", timeout=CHILD_TIMEOUT)
        self.assertEqual(p.wait(timeout=CHILD_TIMEOUT), -signal.SIGKILL)
        self.assertEqual(c.pending, 0)
        self.assertIsInstance(cm.exception.request_id, int)
        # the client works on with a new server
        self.start_server(c.name, "echo", 1)
        self.assertEqual(c.call(b"y", timeout=CHILD_TIMEOUT), b"echo:y")

    def test_resend_sends_again_to_the_next_server(self) -> None:
        c = self.service(resend=True)
        dying = self.start_server(c.name, "die", 0)
        started: list[subprocess.Popen[str]] = []

        def after_its_death() -> None:  # only then a server that answers
            dying.wait(timeout=CHILD_TIMEOUT)
            started.append(self.start_server(c.name, "echo", 1))

        t = threading.Thread(target=after_its_death)
        t.start()
        try:
            self.assertEqual(c.call(b"z", timeout=CHILD_TIMEOUT), b"echo:z")
        finally:
            t.join(CHILD_TIMEOUT)
        self.assertEqual(dying.returncode, -signal.SIGKILL)
        self.assertEqual(len(started), 1)
        self.assertEqual(c.pending, 0)
        with self.assertRaises(ValueError):
            shmchan.Service(c.name, role="server", resend=True)

    def test_dead_client_costs_only_its_answer(self) -> None:
        c = self.service()
        code = r"""
import os, sys, shmchan
with shmchan.Service.client(sys.argv[1]) as c:
    c.request(b"orphan", timeout=60)
    os._exit(0)  # gone before the answer
"""
        self.assertEqual(run_python(code, c.name).returncode, 0)
        with shmchan.Service.server(c.name) as s:
            # The dead client's request is dropped, not served: a server
            # never works for nobody.
            with self.assertRaises(shmchan.TimedOut):
                s.take(timeout=0.2)
            rid = c.request(b"alive", timeout=CHILD_TIMEOUT)
            req = s.take(timeout=CHILD_TIMEOUT)
            self.assertEqual((req.data, req.id), (b"alive", rid))
            self.assertTrue(s.reply(req, b"ok"))
        self.assertEqual(c.response(timeout=CHILD_TIMEOUT), shmchan.Response(b"ok", rid,
                                                                            False, False))

    # ------------------------------------------------- server side, misuse
    def test_server_holds_one_request_at_a_time(self) -> None:
        c = self.service()
        with shmchan.Service.server(c.name) as s:
            self.assertEqual(s.role, "server")
            with self.assertRaises(shmchan.WouldBlock):
                s.take(timeout=0)
            with self.assertRaises(shmchan.TimedOut):
                s.take(timeout=0.05)
            c.request(b"1", timeout=CHILD_TIMEOUT)
            c.request(b"2", timeout=CHILD_TIMEOUT)
            req = s.take(timeout=CHILD_TIMEOUT)
            with self.assertRaises(shmchan.BadState):
                s.take(timeout=0)
            self.assertTrue(s.reply(req, b"part", more=True))
            self.assertTrue(s.reply(req, b"end"))
            with self.assertRaises(shmchan.BadState):
                s.reply(req, b"twice")
            self.assertEqual(s.take(timeout=CHILD_TIMEOUT).data, b"2")
        # closing the server with "2" unanswered fails it for the client
        self.assertEqual(c.response(timeout=CHILD_TIMEOUT)[:3], (b"part", req.id, True))
        self.assertEqual(c.response(timeout=CHILD_TIMEOUT)[:3], (b"end", req.id, False))
        with self.assertRaises(shmchan.PeerDied):
            c.response(timeout=CHILD_TIMEOUT)

    def test_errors(self) -> None:
        c = self.service()
        with self.assertRaises(shmchan.MessageTooLarge):
            c.request(b"x" * 1025, timeout=0)
        with self.assertRaises(shmchan.WrongKind):
            c.take(timeout=0)
        c.request(b"pending", timeout=0)
        with self.assertRaises(shmchan.BadState):
            c.call(b"needs none pending", timeout=0)
        with shmchan.Service.server(c.name) as s:
            with self.assertRaises(shmchan.WrongKind):
                s.request(b"x", timeout=0)
            other = shmchan.Service.server(c.name)
            self.addCleanup(other.close)
            req = s.take(timeout=CHILD_TIMEOUT)
            with self.assertRaises(ValueError):
                other.reply(req, b"not its request")
            s.reply(req, b"")
        with self.assertRaises(shmchan.NotFound):
            shmchan.Service.open(self.name())
        q = self.name()
        shmchan.Queue.create(q).close()
        with self.assertRaises(shmchan.GeometryMismatch) as cm:
            shmchan.Service.open(q)
        self.assertEqual((cm.exception.existing, cm.exception.requested), ("queue", "service"))
        with self.assertRaises(ValueError):
            shmchan.Service(self.name(), role="worker")
        c.close()
        with self.assertRaises(ValueError):
            c.call(b"closed")

    # ----------------------------------------------- readiness, asyncio
    def test_fileno_and_asyncio(self) -> None:
        c = self.service()
        with shmchan.Service.server(c.name) as s:
            sel = selectors.DefaultSelector()
            sel.register(s.fileno(), selectors.EVENT_READ)
            self.assertEqual(sel.select(0), [])
            c.request(b"wake", timeout=CHILD_TIMEOUT)
            self.assertEqual(len(sel.select(CHILD_TIMEOUT)), 1)
            sel.close()

            async def both() -> bytes:
                async def serve_one() -> None:
                    req = await s.take_async()
                    s.reply(req, req.data + b"!")

                task = asyncio.ensure_future(serve_one())
                await task
                r = await c.response_async()
                task2 = asyncio.ensure_future(serve_one())
                got = await c.call_async(b"second")
                await task2
                return r.data + b"|" + got

            self.assertEqual(asyncio.run(both()), b"wake!|second!")


if __name__ == "__main__":
    unittest.main()
