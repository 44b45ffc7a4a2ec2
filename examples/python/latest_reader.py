#!/usr/bin/env python3
"""The recipe's reader on shmchan: prints each new message as it arrives.

The recipe re-mapped the file and printed it every second, whatever it held.
This reader sleeps in the kernel until a newer message is published (no
polling), then prints it, whole. If the writer is faster than the reader,
intermediate messages are skipped: a latest-value channel keeps the newest.

    python3 latest_reader.py [--name test] [--count N] [--until TEXT] [--timeout S]

Ctrl-C stops it.
"""

import argparse

import _path  # noqa: F401  (source checkout support)
import shmchan


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", default="test", help="channel name (default: test)")
    ap.add_argument("--file", help="use a file-backed channel at this path instead")
    ap.add_argument("--count", type=int, default=0, help="stop after N messages (0: never)")
    ap.add_argument("--until", help="stop after printing this message")
    ap.add_argument("--timeout", type=float, default=None,
                    help="give up after this many seconds without a message")
    ap.add_argument("--create", action="store_true",
                    help="create the channel if the writer has not yet")
    args = ap.parse_args()

    target = args.file if args.file else args.name
    try:
        if args.create:  # the same geometry as the writer's: 1024-byte messages
            ch = shmchan.Latest.create(target, max_msg=1024, file=bool(args.file))
        else:
            ch = shmchan.Latest.open(target, file=bool(args.file))
    except shmchan.NotFound:
        print(f"reader: no channel {target!r} yet: start the writer first (or use --create)")
        return 1
    seen = 0
    with ch:
        try:
            # Each iteration sleeps until a message newer than the last one exists.
            for seq, data in ch.updates(timeout=args.timeout):
                text = data.decode(errors="replace")
                print(f"reader: #{seq} {text}", flush=True)
                seen += 1
                if (args.count and seen >= args.count) or text == args.until:
                    break
            else:
                print("reader: timed out", flush=True)
                return 1
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
