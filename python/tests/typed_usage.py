"""Code that uses shmchan as a typed program would: checked by
``mypy --strict`` in the test command (python.mypy), never run."""

from __future__ import annotations

from typing import Any, Optional

import shmchan


def writer(name: str) -> int:
    with shmchan.Latest.create(name, max_msg=64) as ch:
        latest: shmchan.Latest = ch  # the context manager gives a Latest
        seq: int = latest.publish(b"x")
        with latest.begin(8) as r:
            r.data[:1] = b"y"
        return seq + latest.publish_obj({"k": 1})


def reader(name: str) -> Optional[bytes]:
    try:
        with shmchan.Latest.open(name, wait=1.0) as ch:
            seq, data = ch.read_next(0, timeout=0.5)
            with ch.view() as v:
                first: int = v.data[0]
                v.check()
            return data if seq > first else None
    except shmchan.TimedOut:  # a TimeoutError
        return None
    except shmchan.NotFound as e:
        code: int = e.code
        return str(code).encode()


def queue(name: str) -> list[shmchan.Message]:
    with shmchan.Queue.create(name, capacity=1 << 16) as q:
        q.send(b"a", timeout=0)
        q.send_obj([1, 2])
        with shmchan.Queue.subscribe(name, oldest=True) as sub:
            obj: Any = sub.recv_obj(timeout=1)
            with sub.peek(timeout=1) as v:
                _ = bytes(v)
            del obj
            return sub.recv_batch(16, timeout=0)


def service(name: str) -> list[bytes]:
    with shmchan.Service.create(name, max_msg=256, max_servers=2) as client:
        rid: int = client.request(b"x", timeout=1)
        r: shmchan.Response = client.response(timeout=1)
        parts = list(client.stream(b"y", timeout=1))
        try:
            parts.append(client.call(b"z", timeout=0.5))
        except shmchan.RemoteError as e:
            parts.append(e.body)
        except shmchan.PeerDied as e:
            rid = e.request_id
        with shmchan.Service.server(name) as server:
            req: shmchan.Request = server.take(timeout=1)
            delivered: bool = server.reply(req, req.data, more=True)
            server.reply(req, b"", error=not delivered)
            n: int = server.serve(lambda data: [data, data], count=1, idle_timeout=0.1)
            fd: int = server.fileno()
        return parts + [r.data, str(rid + n + fd).encode()]


def errors(e: BaseException) -> str:
    if isinstance(e, shmchan.WouldBlock):
        return "full or empty"
    if isinstance(e, (shmchan.MessageTooLarge, shmchan.Stale, shmchan.Error)):
        return e.message
    return ""


print(shmchan.library_path, shmchan.backend, shmchan.LAYOUT_VERSION)
