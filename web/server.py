"""Serving the app: uvicorn in a thread of the process that asks (the daemon's, or ``tokentally web``'s).

:class:`WebServer` starts uvicorn on ``[web] bind``/``port`` in a thread and returns once it
listens (or raises :class:`WebStartError`, e.g. the port is taken); :meth:`WebServer.stop` lets the
requests in hand finish and joins it. Signals stay with the main thread: the daemon's handlers
(or ``tokentally web``'s) decide when to stop, so SIGTERM ends the process cleanly with exit 0.
uvicorn runs without a ``server`` header and without access logs (the app logs what matters).

:func:`announce` is what a start says: on a database without tokens, a one-time admin sign-in
link (its token's secret is never shown; the link is the way in), and a warning when the console
listens beyond loopback without an https ``public_url``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import uvicorn
from sqlalchemy import Engine

from worker.settings import Settings
from web.app import create_app
from web.auth import create_login_link, create_token, has_tokens

logger = logging.getLogger(__name__)

START_TIMEOUT = 15.0  # seconds to wait for the socket to listen
STOP_TIMEOUT = 15  # seconds the requests in hand get to finish


class WebStartError(RuntimeError):
    """The console could not start listening; the message names the setting."""


class WebServer:
    def __init__(self, settings: Settings, engine: Engine):
        self.settings = settings
        config = uvicorn.Config(create_app(settings, engine), host=settings.web.bind, port=settings.web.port,
                                server_header=False, access_log=False, log_config=None, lifespan="on",
                                timeout_graceful_shutdown=STOP_TIMEOUT)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._serve, name="web", daemon=True)
        self.error: BaseException | None = None

    def _serve(self) -> None:
        try:
            self.server.run()
        except BaseException as exc:  # noqa: BLE001 - uvicorn exits (SystemExit) when it cannot bind
            self.error = exc

    @property
    def url(self) -> str:
        return self.settings.web.base_url

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                web = self.settings.web
                raise WebStartError(f"web: cannot listen on {web.bind}:{web.port} (see the log above; is the port "
                                    f"taken? set [web] port / TOKENTALLY_WEB_PORT or [web] enabled = false)")
            time.sleep(0.02)
        logger.info("console and API listening", extra={"action": "web_started", "url": self.url})

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(STOP_TIMEOUT + 5)
        logger.info("console and API stopped", extra={"action": "web_stopped"})


def announce(settings: Settings, engine: Engine, say: Callable[[str], None], warn: Callable[[str], None]) -> None:
    web = settings.web
    if not web.loopback and not web.https:
        warn(f"web: listening on {web.bind}, beyond loopback, without [web] public_url set to https: tokens and "
             f"session cookies would cross the network in clear. Put a TLS proxy in front and set public_url.")
    if not has_tokens(engine):
        token_id, _ = create_token(engine, "first-start admin", "admin")
        code = create_login_link(engine, token_id)
        say(f"first start: sign in as admin once with {web.base_url}/login/{code} (valid 24 hours, once); "
            f"then create tokens with `tokentally tokens create`")
