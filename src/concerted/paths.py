"""Paths given to DuckDB's readers, read as named.

DuckDB's ``read_csv``, ``read_json_objects`` and ``read_parquet`` expand ``*``, ``?``,
``[...]`` and ``{...}`` in a path as a pattern: ``exp[12]/posts.csv`` would read
``exp1/posts.csv`` and ``exp2/posts.csv`` and never the named file. :func:`literal`
gives a path that names the file itself.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from concerted.errors import ConfigError

__all__ = [
    "directory",
    "has_pattern",
    "literal",
    "literal_path",
    "output_directory",
    "readable",
    "remove",
]

# What DuckDB's readers expand in a path.
_PATTERN = frozenset("*?[]{}")


def has_pattern(path: str | Path) -> bool:
    """Whether a reader would expand ``path`` as a pattern.

    >>> has_pattern("exp[12]/posts.csv"), has_pattern("exp 12/posts.csv")
    (True, False)
    """
    return bool(_PATTERN.intersection(str(path)))


def literal_path(path: str | Path) -> tuple[str, str]:
    """The path to give a reader so that it reads ``path`` itself, and a directory to
    :func:`remove` after (empty when none was made): a name holding pattern characters
    is read through a link of a plain name in a new directory.

    >>> literal_path("plain/posts.csv")
    ('plain/posts.csv', '')
    """
    path = Path(path)
    if not has_pattern(path):
        return str(path), ""
    made = tempfile.mkdtemp(prefix="concerted-read-")
    suffix = "".join(s for s in path.suffixes[-2:] if s[1:].isalnum())
    link = os.path.join(made, "data" + suffix)
    os.symlink(path.resolve(), link)
    return link, made


def remove(made: str) -> None:
    """Remove a directory :func:`literal_path` made (nothing when ``made`` is empty)."""
    if made:
        shutil.rmtree(made, ignore_errors=True)


@contextmanager
def literal(path: str | Path) -> Iterator[str]:
    """:func:`literal_path` for the length of a block."""
    name, made = literal_path(path)
    try:
        yield name
    finally:
        remove(made)


def directory(path: str | Path) -> Path:
    """``path`` as a directory, made (with its parents) where it is new; a clear error
    where something else is in the way: a file, or a link to nothing.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     directory(Path(tmp) / "a" / "b").is_dir()
    True
    """
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise ConfigError(f"{path} is a link to {os.readlink(path)}, which does not exist")
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot make the directory {path}: {exc.strerror}") from exc
    return path


def output_directory(out: str | Path, files: tuple[str, ...], overwrite: bool) -> Path:
    """``out`` as a result directory (:func:`directory`); a former run's ``files``
    there are refused unless ``overwrite``.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "run.json").write_text("{}")
    ...     output_directory(tmp, ("run.json",), overwrite=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    concerted.errors.ConfigError: ... already holds run.json; use --overwrite to replace them
    """
    out = Path(out)
    existing = [name for name in files if (out / name).exists()]
    if existing and not overwrite:
        raise ConfigError(
            f"{out} already holds {', '.join(existing)}; use --overwrite to replace them"
        )
    return directory(out)


_LINKS: list[str] = []


def _remove_links() -> None:
    for made in _LINKS:
        remove(made)


def readable(path: str | Path) -> str:
    """:func:`literal_path` for a reader whose view outlives the call (a DuckDB view):
    the link, where one is needed, stays until the process ends.

    >>> readable("result/edges.parquet")
    'result/edges.parquet'
    """
    name, made = literal_path(path)
    if made:
        if not _LINKS:
            atexit.register(_remove_links)
        _LINKS.append(made)
    return name
