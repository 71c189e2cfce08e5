"""Run the service on uvicorn: one process, one event loop, one writer."""

from __future__ import annotations

import logging

import uvicorn

from concerted.service.app import create_app
from concerted.service.settings import ServiceSettings

__all__ = ["config", "run"]


def config(settings: ServiceSettings, *, freeze_gc: bool = False) -> uvicorn.Config:
    """uvicorn's configuration: the access log is the app's own, which names route
    templates only (uvicorn's would print paths, which hold identifiers). httptools and
    uvloop are used where installed (they are dependencies), h11 and asyncio otherwise."""
    return uvicorn.Config(
        create_app(settings, freeze_gc=freeze_gc),
        host=settings.host,
        port=settings.port,
        access_log=False,
        lifespan="on",
        http="auto",
        ws="none",
        loop="auto",
        server_header=False,
        log_config=None,
        timeout_graceful_shutdown=30,
        # uvicorn's default is 5 s: a batch client of the restart benchmark at 10^6
        # reports met a closed connection (BrokenPipe) while the server was busy with
        # large groups and snapshots; a keep-alive that short is the likely cause.
        timeout_keep_alive=60,
    )


def run(settings: ServiceSettings) -> None:
    """Serve until SIGINT or SIGTERM; then finish the requests in flight, let the
    writer drain, write a snapshot and close the log."""
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        logging.getLogger("concerted.service").warning(
            "listening beyond loopback; put TLS in front of it"
        )
    uvicorn.Server(config(settings, freeze_gc=True)).run()
