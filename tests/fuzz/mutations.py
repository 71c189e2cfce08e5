"""Mutations of real input files, for fuzzing the adapters (``tests/fuzz``).

Each mutation takes a file's bytes and a random generator and returns new bytes. They
are shaped after what real exports get wrong: a header renamed (with quotes,
brackets, spaces, non-ASCII), a cell blanked, swapped or made enormous, a line cut or
doubled, bytes that are not UTF-8, numbers where text belongs and the other way.
"""

from __future__ import annotations

import random
from collections.abc import Callable

Mutation = Callable[[bytes, random.Random], bytes]

_WEIRD = [
    '"',
    "'",
    "[",
    "]",
    "*",
    "?",
    "{",
    "}",
    ";",
    "\\",
    " ",
    "é",
    "ہ",
    "\u200b",
    "\t",
    "NaN",
    "inf",
    "-1",
    "0",
    "99999999999999999999",
    "1e308",
    "null",
    "[]",
    "{}",
    "<script>",
    "2020-02-30T25:61:00Z",
    "+99:00",
]


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def rename_header(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    cells = lines[0].split(b",")
    i = rng.randrange(len(cells))
    cells[i] = cells[i] + rng.choice(_WEIRD).encode()
    lines[0] = b",".join(cells)
    return b"\n".join(lines)


def _set_cell(data: bytes, rng: random.Random, value: Callable[[], bytes]) -> bytes:
    """``data`` with one cell of a row after the header (drawn) set to ``value()``,
    drawn after the cell, as every corpus entry's seed assumes."""
    lines = _lines(data)
    if len(lines) < 2:
        return data
    row = rng.randrange(1, len(lines))
    cells = lines[row].split(b",")
    cells[rng.randrange(len(cells))] = value()
    lines[row] = b",".join(cells)
    return b"\n".join(lines)


def replace_cell(data: bytes, rng: random.Random) -> bytes:
    return _set_cell(data, rng, lambda: rng.choice(_WEIRD).encode())


def blank_cell(data: bytes, rng: random.Random) -> bytes:
    return _set_cell(data, rng, lambda: b"")


def cut(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def double_line(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    row = rng.randrange(len(lines))
    return b"\n".join([*lines[: row + 1], lines[row], *lines[row + 1 :]])


def drop_line(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    if len(lines) < 2:
        return data
    del lines[rng.randrange(1, len(lines))]
    return b"\n".join(lines)


def flip_byte(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    i = rng.randrange(len(data))
    return data[:i] + bytes([rng.randrange(256)]) + data[i + 1 :]


def not_utf8(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data) + 1)
    return data[:i] + rng.choice([b"\xff", b"\xc3\x28", b"\xe9", b"\x80\x80"]) + data[i:]


def long_cell(data: bytes, rng: random.Random) -> bytes:
    return _set_cell(data, rng, lambda: b"x" * rng.choice([1_000, 100_000, 3_000_000]))


def swap_columns(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    out = []
    width = len(lines[0].split(b","))
    i, j = rng.randrange(width), rng.randrange(width)
    for line in lines:
        cells = line.split(b",")
        if len(cells) == width:
            cells[i], cells[j] = cells[j], cells[i]
        out.append(b",".join(cells))
    return b"\n".join(out)


#: Every mutation, by name.
MUTATIONS: dict[str, Mutation] = {
    f.__name__: f
    for f in (
        rename_header,
        replace_cell,
        blank_cell,
        cut,
        double_line,
        drop_line,
        flip_byte,
        not_utf8,
        long_cell,
        swap_columns,
    )
}


def mutate(data: bytes, names: list[str], seed: int) -> bytes:
    """``data`` after each named mutation in turn, drawn from ``seed``."""
    rng = random.Random(seed)
    for name in names:
        data = MUTATIONS[name](data, rng)
    return data
