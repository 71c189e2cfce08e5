"""The intake log a service writes to, opened by the name its settings give
(``[service] log``, ``concerted serve --log``): the implementations of
:class:`~concerted.service.base.IntakeLog`, each in its own module."""

from __future__ import annotations

from pathlib import Path

from concerted.service.base import IntakeLog

__all__ = ["open_log"]


def open_log(log: str, state: Path) -> IntakeLog:
    """The intake log ``log`` names: ``"sqlite"``, the file ``state/log.sqlite``
    (:class:`~concerted.service.sqlite.SqliteLog`), or a ``nats://`` URL, streams on
    that JetStream server (:class:`~concerted.service.jetstream.JetStreamLog`).

    >>> import tempfile
    >>> log = open_log("sqlite", Path(tempfile.mkdtemp()))
    >>> type(log).__name__, log.last_offset
    ('SqliteLog', 0)
    >>> log.close()
    """
    if log == "sqlite":
        from concerted.service.sqlite import SqliteLog

        return SqliteLog(state / "log.sqlite")
    from concerted.service.jetstream import JetStreamLog

    return JetStreamLog(log)
