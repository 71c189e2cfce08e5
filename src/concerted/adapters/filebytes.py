"""What concerted reads of a file's bytes itself, where DuckDB's readers say too little
or the wrong thing: the carriage returns that end no line (and a copy with them
marked), a header line that is not UTF-8, the first byte that is not UTF-8, a JSON
array's elements found without parsing them; and a file opened for its bytes through
gzip. The readers of :mod:`concerted.adapters.scans` call them.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from concerted.errors import SchemaError

__all__ = [
    "MARK",
    "MAX_DOCUMENT_BYTES",
    "MAX_LINE_BYTES",
    "array_elements",
    "check_header",
    "first_non_utf8",
    "is_gzip",
    "lone_carriage_return",
    "lone_carriage_returns",
    "marked_copy",
    "open_bytes",
]

#: The longest CSV line read: DuckDB's default limit is 2 MB, and a longer line (a post
#: with an embedded image, a long thread) failed the whole file. The reader's buffer
#: stays the size DuckDB gives it by default (16 times its default line limit).
MAX_LINE_BYTES = 32 * 2**20
#: A JSON document holding its records in a nested array is read whole (DuckDB buffers
#: twice this); JSON lines and top-level arrays stream instead.
MAX_DOCUMENT_BYTES = 256 * 2**20


def lone_carriage_return(path: Path, chunk: int = 2**20) -> tuple[int, int] | None:
    r"""The line and byte offset of the first carriage return in ``path`` that is not
    followed by a line feed, or None (the file read as it is stored; a gzip file is not
    searched).

    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = f.write_bytes(b"a,b\r\n1,2\n3,x\ry\n")
    >>> lone_carriage_return(f), lone_carriage_return(f, chunk=2)
    ((3, 12), (3, 12))
    """
    return next(lone_carriage_returns(path, chunk), None)


def lone_carriage_returns(path: Path, chunk: int = 2**20) -> Iterator[tuple[int, int]]:
    r"""The line and byte offset of every carriage return in ``path`` that is not
    followed by a line feed, in order (none for a gzip file).

    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = f.write_bytes(b"a\r\r\n1\n2\r3\r")
    >>> list(lone_carriage_returns(f)) == list(lone_carriage_returns(f, chunk=1))
    True
    >>> list(lone_carriage_returns(f))
    [(1, 1), (3, 7), (3, 9)]
    """
    if path.suffix.lower() in (".gz", ".zst"):
        return
    line, start, tail = 1, 0, b""
    with path.open("rb") as f:
        while True:
            data = f.read(chunk)
            text = tail + data
            # A carriage return that ends what was read waits for the byte after it.
            done = len(text) - (bool(data) and text.endswith(b"\r"))
            at = 0
            for found in re.finditer(rb"\r(?!\n)", text[:done]):
                line += text.count(b"\n", at, found.start())
                at = found.start()
                yield line, start + found.start()
            line += text.count(b"\n", at, done)
            if not data:
                return
            start += done
            tail = text[done:]


#: What stands for a carriage return that ends no line in the copy of a CSV file read
#: when such returns kept DuckDB's sniffer from telling the dialect: a character of
#: Unicode's private use area, which no text means anything by.
MARK = "\ue000"


def marked_copy(path: Path, returns: Sequence[tuple[int, int]], directory: str) -> Path:
    """A copy of ``path`` in ``directory`` with each of the carriage returns at the
    ``returns``' byte offsets turned into :data:`MARK`; nothing else changes."""
    copy = Path(directory) / "marked.csv"
    mark = MARK.encode()
    with path.open("rb") as src, copy.open("wb") as dst:
        at = 0
        for _, offset in returns:
            while at < offset:
                piece = src.read(min(offset - at, 2**20))
                dst.write(piece)
                at += len(piece)
            src.read(1)
            dst.write(mark)
            at += 1
        for piece in iter(lambda: src.read(2**20), b""):
            dst.write(piece)
    return copy


def check_header(path: Path) -> None:
    r"""Refuse a header line that is not UTF-8 text: DuckDB's reader passes over such a
    line without a word and takes the first record for the header, so the file's
    columns would be named after its first row's values and that row lost.

    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = f.write_bytes(b"id,pa\xefs\n1,x\n")
    >>> try:
    ...     check_header(f)
    ... except SchemaError as e:
    ...     print(e.line, e.reason)
    1 the header line holds bytes that are not UTF-8 (the first at byte 5); save the file as UTF-8
    """
    if path.suffix.lower() == ".zst":
        return  # DuckDB alone reads it
    with open_bytes(path) as f:
        head = f.read(min(MAX_LINE_BYTES, 2**16))
        while b"\n" not in head and b"\r" not in head and len(head) < MAX_LINE_BYTES:
            more = f.read(2**20)
            if not more:
                break
            head += more
    line = re.split(rb"[\r\n]", head, maxsplit=1)[0]
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.end == len(line) == len(head):
            return  # a character cut where the read stopped, in a line too long to read
        raise SchemaError(
            path,
            "the header line holds bytes that are not UTF-8 (the first at byte "
            f"{exc.start:,}); save the file as UTF-8",
            line=1,
        ) from None


#: What splits an array's text into its elements: a string (to its closing quote, or
#: the end of a cut file), a bracket or a comma.
_ARRAY_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*(?:"|\Z)|[][{},]', re.DOTALL)


def array_elements(path: Path) -> list[bytes] | None:
    r"""The elements of the JSON array that ``path`` holds (after gzip for ``.gz``), as
    text each on one line, found without parsing them, so that a broken one does not
    hide the others: a value cut off at the end of the file is the last element, and
    an element that is not JSON stays so (a line break inside one of its strings, where
    JSON allows none, becomes a control byte, which JSON allows there neither; an empty
    element, a lone comma). What follows the array is one more element. None when the
    file is not an array, or is longer than a document may be.

    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "x.json"
    >>> _ = f.write_bytes(b'[{"a": "x,]"},\n {"a": 1x},, {"b": [1,\n 2]}, {"c": "cut')
    >>> array_elements(f)
    [b'{"a": "x,]"}', b'{"a": 1x}', b',', b'{"b": [1,  2]}', b'{"c": "cut']
    >>> _ = f.write_bytes(b' [ ] ')
    >>> array_elements(f), array_elements(f) if f.write_bytes(b'{"a": [1]}') else 0
    ([], None)
    """
    if path.stat().st_size > MAX_DOCUMENT_BYTES:
        return None
    try:
        with open_bytes(path) as f:
            data = f.read(MAX_DOCUMENT_BYTES + 1)
    except (OSError, EOFError):
        return None
    if len(data) > MAX_DOCUMENT_BYTES:
        return None
    start = len(data) - len(data.lstrip(b"\xef\xbb\xbf \t\r\n"))
    if data[start : start + 1] != b"[":
        return None
    elements: list[bytes] = []
    depth, begun, end = 1, start + 1, len(data)
    for token in _ARRAY_TOKENS.finditer(data, start + 1):
        c = token.group()
        if c in (b"[", b"{"):
            depth += 1
        elif c in (b"]", b"}"):
            depth -= 1
            if depth == 0:
                end = token.start()
                break
        elif c == b"," and depth == 1:
            elements.append(data[begun : token.start()])
            begun = token.end()
    elements.append(data[begun:end])
    out = [_one_line(e.strip(b" \t\r\n")) or b"," for e in elements]
    if out == [b","]:
        out = []  # an empty array
    rest = data[end + 1 :].strip(b" \t\r\n")
    if rest:
        out.append(_one_line(rest))
    return out


def _one_line(element: bytes) -> bytes:
    """``element`` on one line: its line breaks blanks where all are between tokens,
    control bytes where a string holds one (the element is broken either way)."""
    broken = any(
        t.group()[:1] == b'"' and (b"\n" in t.group() or b"\r" in t.group())
        for t in _ARRAY_TOKENS.finditer(element)
    )
    mark = b"\x01" if broken else b" "
    return element.replace(b"\r", mark).replace(b"\n", mark)


def first_non_utf8(path: Path, chunk: int = 2**20) -> int | None:
    """The offset of the first byte of ``path`` that is not part of UTF-8 text, or None.

    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "x.json"
    >>> _ = f.write_bytes('{"a": "café '.encode() + bytes([255]) + b'"}')
    >>> first_non_utf8(f), first_non_utf8(f, chunk=11)
    (13, 13)
    >>> _ = f.write_bytes("café".encode())
    >>> first_non_utf8(f, chunk=4) is None
    True
    """
    start, held = 0, b""  # where ``held`` (a character cut by the chunk) begins
    with path.open("rb") as f:
        while True:
            data = f.read(chunk)
            text = held + data
            try:
                text.decode("utf-8")
                start, held = start + len(text), b""
            except UnicodeDecodeError as exc:
                cut = exc.reason == "unexpected end of data" and exc.end == len(text)
                if not (cut and data):
                    return start + exc.start
                start, held = start + exc.start, text[exc.start :]
            if not data:
                return None


def is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def open_bytes(path: Path) -> io.BufferedIOBase:
    """``path`` opened for its bytes, through gzip where it is named ``.gz`` and is
    gzip (as DuckDB's readers take it)."""
    if path.suffix.lower() == ".gz" and is_gzip(path):
        return gzip.open(path, "rb")
    return path.open("rb")
