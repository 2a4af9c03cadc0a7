"""Serving the app: uvicorn in a thread of the process that asks (the daemon's, or ``tokentally web``'s).

:class:`WebServer` starts uvicorn on ``[web] bind``/``port`` in a thread and returns once it
listens (or raises :class:`WebStartError`, e.g. the port is taken); :meth:`WebServer.stop` lets the
requests in hand finish and joins it. With ``[web] workers`` above 1 that thread supervises as
many worker processes on one address instead (:mod:`web.workers`): the caller (and the daemon of
``tokentally run``) stays in this process, once. Signals stay with the main thread: the daemon's handlers
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
from web.workers import READY_TIMEOUT, AppFactory, Workers, bind

logger = logging.getLogger(__name__)

START_TIMEOUT = 15.0  # seconds to wait for the socket to listen
STOP_TIMEOUT = 15  # seconds the requests in hand get to finish


class WebStartError(RuntimeError):
    """The console could not start listening; the message names the setting."""


class WebServer:
    """``[web] workers = 1``: uvicorn in a thread of this process. More: :class:`web.workers.Workers`
    in a thread, that many worker processes on one address."""

    def __init__(self, settings: Settings, engine: Engine):
        self.settings = settings
        web = settings.web
        options = dict(host=web.bind, port=web.port, server_header=False, access_log=False, log_config=None,
                       lifespan="on", timeout_graceful_shutdown=STOP_TIMEOUT)
        self.server: uvicorn.Server | None = None
        self.workers: Workers | None = None
        if web.workers > 1:
            self.workers = Workers(uvicorn.Config(AppFactory(settings), factory=True, **options), web.workers,
                                   STOP_TIMEOUT)
            target = self.workers.run
        else:
            self.server = uvicorn.Server(uvicorn.Config(create_app(settings, engine), **options))
            target = self._serve
        self.thread = threading.Thread(target=target, name="web", daemon=True)
        self.error: BaseException | None = None

    def _serve(self) -> None:
        try:
            self.server.run()
        except BaseException as exc:  # noqa: BLE001 - uvicorn exits (SystemExit) when it cannot bind
            self.error = exc

    @property
    def url(self) -> str:
        return self.settings.web.base_url

    @property
    def running(self) -> bool:
        """Still serving (False once the server or every worker stopped by itself)."""
        return self.thread.is_alive()

    def _started(self) -> bool:
        return self.workers.ready.is_set() if self.workers is not None else self.server.started

    def start(self) -> None:
        web = self.settings.web
        cannot = (f"web: cannot listen on {web.bind}:{web.port} (see the log above; is the port taken? set "
                  f"[web] port / TOKENTALLY_WEB_PORT or [web] enabled = false)")
        if self.workers is not None:
            try:
                self.workers.sockets = bind(web.bind, web.port, web.workers)
            except OSError as exc:
                raise WebStartError(f"{cannot}: {exc.strerror}") from None
        self.thread.start()
        deadline = time.monotonic() + (READY_TIMEOUT if self.workers is not None else START_TIMEOUT)
        while not self._started():
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                if self.workers is None:
                    raise WebStartError(cannot)
                failure = self.workers.failure or f"the workers did not all serve within {READY_TIMEOUT:g} s"
                raise WebStartError(f"web: {failure} (see the log above)")
            time.sleep(0.02)
        logger.info("console and API listening", extra={"action": "web_started", "url": self.url,
                                                         "workers": web.workers})

    def stop(self) -> None:
        if self.workers is not None:
            self.workers.should_exit.set()
        else:
            self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(STOP_TIMEOUT + 10)
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
