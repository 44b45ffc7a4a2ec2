#!/usr/bin/env python3
"""The recipe's writer on shmchan: publishes "msg N" once a second.

The recipe overwrote a 1024-byte mmap in place, so readers saw torn, NUL-padded
messages. Here every publish is a whole message of exact length with a
sequence number; readers never see a mix of two.

    python3 latest_writer.py [--name test] [--count N] [--interval 1.0] [--file PATH]

The channel stays after the writer exits (readers can still read the last
message); remove it with --unlink at the end, or shmchan.unlink("test").
"""

import argparse
import time

import _path  # noqa: F401  (source checkout support)
import shmchan


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", default="test", help="channel name (default: test)")
    ap.add_argument("--file", help="use a file-backed channel at this path instead")
    ap.add_argument("--count", type=int, default=0, help="messages to publish (0: for ever)")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between messages")
    ap.add_argument("--unlink", action="store_true", help="remove the channel at the end")
    args = ap.parse_args()

    target = args.file if args.file else args.name
    with shmchan.Latest.create(target, max_msg=1024, file=bool(args.file)) as ch:
        n = 0
        try:
            while args.count == 0 or n < args.count:
                n += 1
                seq = ch.publish(f"msg {n}".encode())
                print(f"writer: published 'msg {n}' as #{seq}", flush=True)
                if args.count == 0 or n < args.count:
                    time.sleep(args.interval)
        except KeyboardInterrupt:
            pass
    if args.unlink:
        shmchan.unlink(target, file=bool(args.file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
