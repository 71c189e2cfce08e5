"""Fewer fresh memory pages while a large job runs: :func:`kept`.

The analysis and the direct co-action path build and drop large numpy arrays one
after another (keys to sort, pair codes, digests). glibc maps each allocation of more
than 32 MiB afresh and unmaps it when it is freed, so every such array is faulted in
page by page, the kernel zeroing each page; and numpy asks for huge pages
(``MADV_HUGEPAGE``), which the kernel may compact memory to find. On this project's
benchmark machine both showed as system time: 15 of 100 CPU seconds of the demo's
analysis, and 18 % of the direct co-action path's samples went to zeroing pages.

:func:`kept` raises glibc's thresholds for mapping and for trimming while its block
runs, so that a freed array's pages serve the next one, and turns numpy's huge-page
advice off; both are put back when the outermost block ends (blocks may nest, from
one thread or several). Memory that a block freed stays with the process until
then: the peak is the same, what changes is who zeroes the pages. Elsewhere than on
glibc the thresholds are left alone.

>>> with kept():
...     with kept():
...         depth()
2
>>> depth()
0
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["depth", "kept"]

# glibc's mallopt(3) parameters, and their defaults.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
GLIBC_THRESHOLD = 128 * 1024
#: The thresholds while a block runs: allocations up to 1 GiB come from the heap, and
#: the heap is not trimmed below that.
KEPT = 2**30

_lock = threading.Lock()
_depth = 0
_restore: list[Any] = []


def depth() -> int:
    """How many :func:`kept` blocks are running now."""
    return _depth


def _mallopt() -> Any:
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        libc = ""
    if not libc.startswith("glibc"):
        return None
    import ctypes

    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt


def _hugepage_toggle() -> Any:
    # numpy.core before numpy 2; the switch is the one NUMPY_MADVISE_HUGEPAGE sets.
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    return getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)


def _enter() -> None:
    mallopt = _mallopt()
    if mallopt is not None:
        for parameter in (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD):
            if mallopt(parameter, KEPT) == 1:
                _restore.append((mallopt, parameter, GLIBC_THRESHOLD))
    toggle = _hugepage_toggle()
    if toggle is not None:
        _restore.append((toggle, toggle(False)))


def _exit() -> None:
    while _restore:
        undo = _restore.pop()
        undo[0](*undo[1:])


@contextmanager
def kept() -> Iterator[None]:
    """Raise glibc's mapping and trimming thresholds and turn numpy's huge-page advice
    off while the block runs; put both back when the outermost block ends. glibc no
    longer moves its mapping threshold by itself after (it does so only until one is
    set)."""
    global _depth
    with _lock:
        _depth += 1
        if _depth == 1:
            _enter()
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _exit()
