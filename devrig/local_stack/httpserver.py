"""Small threaded HTTP servers on loopback, quiet about clients that hang up."""

from __future__ import annotations

import errno
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class PortInUse(RuntimeError):
    def __init__(self, port: int, what: str) -> None:
        super().__init__(
            f"port {port} ({what}) is already in use on 127.0.0.1: stop whatever holds it "
            f"(another `make local`?) or choose another port"
        )
        self.port = port


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 refuses connections under a burst of senders

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that resets or leaves mid-request is not our error


class JsonHandler(BaseHTTPRequestHandler):
    """Request handler helpers: read the body, answer with one write, log nothing."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status: int, payload: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if payload and not headers:
            headers = {"Content-Type": "application/json"}
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


class Server:
    """A QuietServer running in a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0, what: str = "HTTP server") -> None:
        try:
            self.httpd = QuietServer(("127.0.0.1", port), handler)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUse(port, what) from None
            raise
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.httpd.server_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def check_port(port: int, what: str) -> None:
    """Raise PortInUse now rather than after half the stack has started."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUse(port, what) from None
            raise
