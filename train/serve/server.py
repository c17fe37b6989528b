"""Starting and stopping `train serve`: in the foreground for the command line, in a thread for tests
and benchmarks.

The listening socket is bound before uvicorn starts, so the start line names the real port (also with
--port 0) and a port already taken is one line, not a traceback. Shutting down stops accepting, gives
open streams a few seconds, then stops the batcher, which answers whatever still waits with a 503.
"""
from __future__ import annotations

import socket
import threading
import time
from typing import Callable

from train.errors import TrainError
from train.serve.adapters import Served
from train.serve.app import create_app, make_batcher
from train.serve.batcher import Limits
from train.serve.protocol import ApiLimits

GRACE_S = 5


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # listening before the start line: a client that reads it can connect at once
    except OSError as exc:
        sock.close()
        raise TrainError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port or --host") \
            from None
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def start_line(url: str, served: Served) -> str:
    adapters = ", ".join(served.adapters) or "none"
    return f"serve: {url} (OpenAI API at {url}v1)  base model: {served.base_name}  adapters: {adapters}"


def _uvicorn(app, graceful_s: int = GRACE_S):
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=graceful_s)
    return uvicorn.Server(config)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve_forever(served: Served, host: str, port: int, limits: Limits, api: ApiLimits,
                  announce: Callable[[str], None], log: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted (Ctrl-C, SIGTERM); `announce` gets the start line, `log` warnings."""
    sock = bind(host, port)
    if host not in LOOPBACK and log is not None:
        log(f"serve: listening on {host}, not only on this machine: anyone who reaches it can use the models "
            "(there is no authentication)")
    batcher = make_batcher(served, limits).start()
    server = _uvicorn(create_app(served, batcher, api))
    announce(start_line(url_of(sock, host), served))
    try:
        server.run(sockets=[sock])
    finally:
        batcher.stop()
        sock.close()


class BackgroundServer:
    """The server on 127.0.0.1 (a free port by default) in a thread: `with BackgroundServer(served) as s: s.url`."""

    def __init__(self, served: Served, limits: Limits | None = None, api: ApiLimits | None = None,
                 host: str = "127.0.0.1", port: int = 0, start_batcher: bool = True):
        self.served, self.host = served, host
        self.sock = bind(host, port)
        self.url = url_of(self.sock, host)
        self.batcher = make_batcher(served, limits or Limits())
        self.app = create_app(served, self.batcher, api)
        self.server = _uvicorn(self.app, graceful_s=2)
        self._start_batcher = start_batcher
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                        name="curatune-serve", daemon=True)

    def start(self, timeout: float = 30.0) -> "BackgroundServer":
        if self._start_batcher:
            self.batcher.start()
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(30)
        self.batcher.stop()
        self.sock.close()

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()
