"""A TCP echo server with asyncio streams, as in the Python documentation's
"TCP echo server using streams" example. A peer for bench/tcp_echo_bench.ts.

    /usr/bin/python3 bench/peers/python_asyncio_echo.py [PORT]

Binds 127.0.0.1 (port 0 = any free port) and prints `listening on
tcp://127.0.0.1:PORT` when ready. SIGTERM or SIGINT ends it.

Like the documentation's example, it reads whatever has arrived (up to
64 KiB) and writes it back, awaiting drain() so a client that does not read
cannot make it buffer without limit. Unlike it, it asks for a listen backlog
of 4096 (asyncio's default is 100), as a server expecting 1,000 clients at
once would; Linux caps it at net.core.somaxconn.
"""

import asyncio
import signal
import sys


async def handle(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"listening on tcp://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
