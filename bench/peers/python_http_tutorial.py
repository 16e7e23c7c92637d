"""A web server from sockets the way a beginner's tutorial writes it: accept
one connection, recv(1024) once, answer, close, accept the next. A peer for
bench/http_raw_server_bench.ts, the "before" to scripts/http_raw_server.ts's
"after".

    /usr/bin/python3 bench/peers/python_http_tutorial.py [PORT]

Binds 127.0.0.1 (port 0 = any free port) and prints `listening on
http://127.0.0.1:PORT` when ready. SIGTERM or SIGINT ends it.

What it keeps from the tutorials: one client at a time, on one thread; one
recv(1024) taken as the whole request (fine for wrk's small GET, wrong in
general: see notebooks/01_tcp_echo.ipynb); no persistent connections, so every
request pays for a new TCP connection; the request line split on spaces and
nothing else checked.

Departures, so that wrk can measure it at all, and so that it is not a
liability on anyone's machine:
- Content-Length and Connection: close in every response, so the client
  knows where the body ends; CRLF line ends, as HTTP requires.
- listen(4096), not listen(5): wrk keeps 64 connections busy, and a backlog
  of 5 would leave most of them waiting for SYN retries.
- The 404 page escapes the path (the tutorials reflect it raw: an XSS).
"""

import html
import signal
import socket
import sys
import time

PAGES = {
    "/": "<html><body><h1>Home</h1><p>Hello, World!</p></body></html>",
    "/about": "<html><body><h1>About</h1><p>A tutorial's web server.</p></body></html>",
}


def respond(path):
    if path == "/time":
        return "200 OK", f"<html><body>{time.ctime()}</body></html>"
    if path in PAGES:
        return "200 OK", PAGES[path]
    return "404 Not Found", f"<html><body>No page at {html.escape(path)}</body></html>"


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(4096)
    print(f"listening on http://127.0.0.1:{server.getsockname()[1]}", flush=True)
    try:
        while True:
            conn, _ = server.accept()
            with conn:
                request = conn.recv(1024).decode("latin-1")
                parts = request.split(" ")
                path = parts[1] if len(parts) > 1 else "/"
                status, page = respond(path)
                body = page.encode()
                head = (
                    f"HTTP/1.0 {status}\r\n"
                    "Content-Type: text/html\r\n"
                    f"Content-Length: {len(body)}\r\n"
                    "Connection: close\r\n\r\n"
                )
                try:
                    conn.sendall(head.encode() + body)
                except OSError:
                    pass  # the client gave up; next
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()
