"""The demo served by uvicorn in a thread, on a loopback port, with a settable clock."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import uvicorn

from stepup.demo import DemoSettings, create_app
from stepup.testing import SettableClock

#: 2025-06-02 09:00 UTC: a fixed start keeps the dates in the tour screenshots still.
START = 1_748_854_800.0


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class DemoServer:
    """Start with :meth:`start`, stop with :meth:`stop`; ``url`` is where it listens
    (known before the app is built, so providers can be told the return address)."""

    def __init__(self, db_path: Path, *, start: float = START) -> None:
        self.clock = SettableClock(start)
        self.db_path = db_path
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, **settings: Any) -> None:
        """Build the demo (``settings`` go to :class:`DemoSettings`; ``base_url`` is
        :attr:`url` unless given, e.g. ``http://localhost:PORT`` as ``stepup demo`` makes
        it) and serve it."""
        demo_settings = DemoSettings(db_path=self.db_path, **{"base_url": self.url, **settings})
        app = create_app(demo_settings, clock=self.clock)
        self._server = _Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._thread.start()
        if not self._server.ready.wait(timeout=30) or not self._thread.is_alive():
            raise RuntimeError("the demo server did not start")

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)
        self._socket.close()
