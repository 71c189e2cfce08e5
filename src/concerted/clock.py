"""Seconds spent per stage, for the notes a run writes to ``run.json``.

>>> clock = Clock()
>>> with clock.stage("pairs"):
...     pass
>>> with clock.stage("pairs"):
...     pass
>>> list(clock.seconds)
['pairs']
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["Clock"]

log = logging.getLogger(__name__)


class Clock:
    """Times named stages: each :meth:`stage` adds its seconds to ``seconds[name]``
    (a stage run once per batch adds up), tells ``progress`` its name as it starts, and
    logs it. ``prefix`` goes before every name."""

    def __init__(self, progress: Callable[[str], None] | None = None, prefix: str = "") -> None:
        self.seconds: dict[str, float] = {}
        self.progress = progress
        self.prefix = prefix

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage ``name``."""
        name = self.prefix + name
        if self.progress is not None:
            self.progress(name)
        log.debug("stage %s", name)
        start = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - start
            self.seconds[name] = round(self.seconds.get(name, 0.0) + spent, 3)
