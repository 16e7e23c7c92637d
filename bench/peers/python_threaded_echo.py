"""A TCP echo server the way a beginner's tutorial writes it: one thread per
client, recv(1024), send(). A peer for bench/tcp_echo_bench.ts.

    /usr/bin/python3 bench/peers/python_threaded_echo.py [PORT]

Binds 127.0.0.1 (port 0 = any free port) and prints `listening on
tcp://127.0.0.1:PORT` when ready. SIGTERM or SIGINT ends it.

Two departures from the usual tutorial, both ones a real server makes:
- listen(4096), not listen(5): the benchmark opens 1,000 connections at
  once, and a backlog of 5 would leave most of them waiting for SYN retries.
  Linux caps the backlog at net.core.somaxconn (4096 since Linux 5.4).
- SO_REUSEADDR, so a restart can bind while old sockets sit in TIME_WAIT.

What it keeps: `send`, not `sendall`. send() may send only part of what it is
given, which for an echo server would lose bytes. On Linux, send() on a
blocking TCP socket returns short only when a signal interrupts it (or a
send timeout expires; there is none here), so this server echoes every byte
in practice. The benchmark's client checks every byte it gets back, so a
lost byte would fail the run rather than flatter the number.
"""

import signal
import socket
import sys
import threading


def handle(conn):
    with conn:
        while True:
            data = conn.recv(1024)
            if not data:
                break
            conn.send(data)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    # SIGTERM exits at once (daemon threads die with the process).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(4096)
    print(f"listening on tcp://127.0.0.1:{server.getsockname()[1]}", flush=True)
    try:
        while True:
            conn, _ = server.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()
