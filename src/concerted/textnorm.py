"""Text normalisation for matching copies of a message in English, Urdu, Hindi and
romanised Urdu.

Operators paste one message from many accounts, by hand or from different keyboards:
the copies differ in case, in invisible characters, in Arabic-script diacritics and
letter forms, in the digits' script, in punctuation and emoji, and in the links and
mentions each adds. :func:`normalize` maps all of these to one form, so that what is
left to compare is the wording:

1. **Unicode NFKC**: presentation forms (``ﻻ`` to ``لا``), full-width letters and
   ligatures become the plain letters.
2. **Links, mentions** (``@name``) and, when asked, **hashtags** (``#tag``, the word
   with it) are removed; otherwise a hashtag keeps its word without the ``#``.
3. **Case folding**: Unicode simple case folding, plus ``ß``/``ẞ`` to ``ss``.
4. **Invisible characters** (Unicode format characters: zero-width space, joiner and
   non-joiner, bidi marks and embeddings, byte-order mark, soft hyphen) are removed,
   and so are variation selectors.
5. **Arabic script**: diacritics (harakat, tanween, shadda, sukun, superscript alef,
   hamza above and below, Quranic marks) and tatweel are removed; letter variants
   typed from Arabic, Persian or Urdu keyboards become one letter: yeh (``ي ى ئ ې ۍ ے``
   to Farsi yeh ``ی``), kaf (``ك ڪ`` to keheh ``ک``), heh (``ه ة ۃ ۀ ۂ ە ھ`` to heh
   goal ``ہ``), alef (``أ إ آ ٱ`` to ``ا``), waw (``ؤ`` to ``و``).
6. **Devanagari**: the nukta is removed (``ज़`` and ``ज`` match) and candrabindu becomes
   anusvara (``हाँ`` and ``हां`` match).
7. **Digits** of every script (Arabic-Indic ``٣``, Urdu ``۳``, Devanagari ``३``) become
   ASCII digits.
8. **Punctuation and symbols** (emoji included) become spaces; apostrophes are removed
   (``don't`` and ``dont`` match), and so is a comma between digits (``1,000``).
9. **Whitespace** is collapsed to single spaces and trimmed; a letter repeated three
   times or more is cut to two (``zindabaaad`` to ``zindabaad``).

The result is stable: normalising it again changes nothing.

>>> normalize("Pakistan ZINDABAD!!! 🇵🇰 https://t.co/x @user")
'pakistan zindabad'
>>> normalize("پاکستان زِندہ باد") == normalize("پاكستان زنده باد")
True
>>> normalize("हाँ, ज़िंदगी १०० साल।")
'हां जिंदगी 100 साल'

:func:`normalize_array` does the same over an Arrow array at once, and
:func:`normalized_codepoints` gives the normalised texts as one flat array of code
points with offsets, the form the near-duplicate detector shingles; both work on
millions of texts without a Python object per character.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["normalize", "normalize_array", "normalized_codepoints"]

# pyarrow's stubs lack utf8_normalize and type kernels by exact array class: the
# kernels are called through this untyped name.
_pc: Any = pc

Codepoints = npt.NDArray[np.uint32]
Offsets = npt.NDArray[np.int64]

_SPACE = 0x20
_DELETE = -1

# Letter variants: the Arabic, Persian and Urdu forms of one letter become the Urdu form.
_VARIANTS: dict[str, str] = {
    "ي": "ی",  # Arabic yeh
    "ى": "ی",  # alef maksura
    "ئ": "ی",  # yeh with hamza above
    "ې": "ی",  # Pashto yeh
    "ۍ": "ی",  # yeh with tail
    "ێ": "ی",  # yeh with small v
    "ٸ": "ی",  # high hamza yeh
    "ے": "ی",  # yeh barree
    "ۓ": "ی",  # yeh barree with hamza above
    "ك": "ک",  # Arabic kaf
    "ڪ": "ک",  # swash kaf
    "ه": "ہ",  # Arabic heh
    "ة": "ہ",  # teh marbuta
    "ۃ": "ہ",  # teh marbuta goal
    "ۀ": "ہ",  # heh with yeh above
    "ۂ": "ہ",  # heh goal with hamza above
    "ە": "ہ",  # ae
    "ھ": "ہ",  # heh doachashmee
    "أ": "ا",  # alef with hamza above
    "إ": "ا",  # alef with hamza below
    "آ": "ا",  # alef with madda above
    "ٱ": "ا",  # alef wasla
    "ٲ": "ا",  # alef with wavy hamza above
    "ٳ": "ا",  # alef with wavy hamza below
    "ٵ": "ا",  # high hamza alef
    "ؤ": "و",  # waw with hamza above
    "ٶ": "و",  # high hamza waw
    "ँ": "ं",  # Devanagari candrabindu to anusvara
    "’": "'",  # typographic apostrophes, removed below
    "‘": "'",
    "ʼ": "'",
}
_REMOVED = "'\u0640\u093c"  # apostrophe, Arabic tatweel, Devanagari nukta
# Marks in the Arabic-script blocks (harakat, superscript alef, Quranic annotations).
_ARABIC_BLOCKS: tuple[tuple[int, int], ...] = (
    (0x0600, 0x06FF),
    (0x0750, 0x077F),
    (0x08A0, 0x08FF),
    (0xFB50, 0xFDFF),
    (0xFE70, 0xFEFF),
)

# Removed before anything else (the pattern is RE2's, run by Arrow).
_LINKS = r"(?i)(?:https?://|www\.)[^\s\p{Z}]+|@[\p{L}\p{M}\p{N}_.]+"
_HASHTAGS = r"|#[\p{L}\p{M}\p{N}_]+"


def _classify(cp: int) -> tuple[int, bool]:
    """What code point ``cp`` becomes (a code point, or -1 to delete it), and whether
    it is a letter (for the repeated-letter rule)."""
    ch = chr(cp)
    if ch in _VARIANTS:
        ch = _VARIANTS[ch]
    if ch in _REMOVED:
        return _DELETE, False
    category = unicodedata.category(ch)
    if category == "Cf" or 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF:
        return _DELETE, False
    if category in ("Mn", "Me") and any(lo <= cp <= hi for lo, hi in _ARABIC_BLOCKS):
        return _DELETE, False
    if category == "Nd":
        return ord("0") + unicodedata.decimal(ch), False
    if category[0] in "PSZ" or category == "Cc":
        return _SPACE, False
    folded = ch.casefold()
    if len(folded) == 1:
        ch = _VARIANTS.get(folded, folded)
    return ord(ch), unicodedata.category(ch).startswith("L")


@functools.cache
def _bmp_table() -> tuple[npt.NDArray[np.int32], npt.NDArray[np.bool_]]:
    """:func:`_classify` for every code point of the Basic Multilingual Plane."""
    table = np.empty(0x10000, dtype=np.int32)
    letters = np.zeros(0x10000, dtype=np.bool_)
    for cp in range(0x10000):
        if 0xD800 <= cp <= 0xDFFF:  # surrogates never occur in valid UTF-8
            table[cp] = cp
            continue
        table[cp], letters[cp] = _classify(cp)
    return table, letters


@functools.cache
def _composing() -> npt.NDArray[np.uint32]:
    """Code points that canonical composition can join to the character before them;
    only texts holding one need NFC after characters between were removed."""
    seconds = set()
    for cp in range(0x30000):  # no canonical decomposition lies above
        decomposition = unicodedata.decomposition(chr(cp))
        if decomposition and not decomposition.startswith("<"):
            parts = decomposition.split()
            if len(parts) == 2:
                seconds.add(int(parts[1], 16))
    return np.array(sorted(seconds), dtype=np.uint32)


def _lookup(cps: Codepoints, letters: bool = False) -> npt.NDArray[Any]:
    """What each of ``cps`` becomes (-1: delete), or with ``letters``, whether it is a
    letter."""
    table = _bmp_table()[1 if letters else 0]
    if len(cps) and int(cps.max()) < 0x10000:
        return table[cps]
    bmp = cps < 0x10000
    out = table[np.where(bmp, cps, 0)]
    astral = np.flatnonzero(~bmp)
    values, inverse = np.unique(cps[astral], return_inverse=True)
    done = [_classify(int(v))[1 if letters else 0] for v in values]
    out[astral] = np.array(done, dtype=out.dtype)[inverse]
    return out


def _decode(array: Any) -> tuple[Codepoints, Offsets]:
    """An Arrow array of strings to code points and the offsets of each text (a null
    is empty)."""
    array = array.cast(pa.large_string()).fill_null("")
    _, offsets, data = array.buffers()
    o = np.frombuffer(offsets, dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    # Python's codecs run at memory speed.
    text = raw[int(o[0]) : int(o[-1])].tobytes().decode("utf-8")
    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    lengths = _pc.utf8_length(array).to_numpy(zero_copy_only=False)
    return cps, np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])


def _encode(cps: Codepoints, offsets: Offsets) -> pa.LargeStringArray:
    """Code points (and offsets per text) to an Arrow array of strings."""
    data = cps.astype(np.uint32).tobytes().decode("utf-32-le").encode("utf-8")
    width = 1 + (cps >= 0x80).astype(np.int64) + (cps >= 0x800) + (cps >= 0x10000)
    byte_offsets = np.concatenate([[0], np.cumsum(width)])[offsets]
    array: pa.LargeStringArray = pa.LargeStringArray.from_buffers(  # type: ignore[assignment]
        len(offsets) - 1, pa.py_buffer(byte_offsets.astype(np.int64).tobytes()), pa.py_buffer(data)
    )
    return array


def _segments(offsets: Offsets) -> npt.NDArray[np.int64]:
    """The text each position of a flat array belongs to."""
    return np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))


def _compact(
    cps: npt.NDArray[Any], offsets: Offsets, keep: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[Any], Offsets]:
    """The positions where ``keep`` is true, with their texts' offsets."""
    kept = np.flatnonzero(keep)
    return cps[kept], np.searchsorted(kept, offsets).astype(np.int64)


def _digit_groups(cps: Codepoints, offsets: Offsets, mapped: npt.NDArray[np.int32]) -> None:
    """Delete a comma between two digits of one text (``1,000`` is ``1000``)."""
    at = np.flatnonzero((cps == 0x2C) | (cps == 0x066C))
    at = at[(at > 0) & (at < len(cps) - 1)]
    if not len(at):
        return
    before, after = mapped[at - 1], mapped[at + 1]
    digits = (before >= 0x30) & (before <= 0x39) & (after >= 0x30) & (after <= 0x39)
    text = np.searchsorted(offsets, at, side="right")
    inside = (offsets[text - 1] < at) & (at + 1 < offsets[text])
    mapped[at[digits & inside]] = _DELETE


def _map(cps: Codepoints, offsets: Offsets) -> tuple[Codepoints, Offsets]:
    """Rules 3 to 8 and the whitespace of rule 9, on flat code points."""
    mapped = _lookup(cps)
    _digit_groups(cps, offsets, mapped)
    out, offsets = (
        _compact(mapped, offsets, mapped >= 0)
        if int(mapped.min(initial=0)) < 0
        else (mapped, offsets)
    )
    # One space between words, none at either end of a text.
    space = out == _SPACE
    keep = ~space
    keep[1:] |= ~space[:-1]
    starts = offsets[:-1][np.diff(offsets) > 0]
    keep[starts] = ~space[starts]
    out, offsets = _compact(out, offsets, keep)
    ends = offsets[1:][np.diff(offsets) > 0] - 1
    trailing = ends[out[ends] == _SPACE]
    if len(trailing):
        keep = np.ones(len(out), dtype=np.bool_)
        keep[trailing] = False
        out, offsets = _compact(out, offsets, keep)
    return out.astype(np.uint32), offsets


def _recompose(cps: Codepoints, offsets: Offsets) -> tuple[Codepoints, Offsets]:
    """NFC on the texts that hold a character composition may join to the one before."""
    hits = _segments(offsets)[np.isin(cps, _composing())]
    rows = hits[np.concatenate([[True], hits[1:] != hits[:-1]])] if len(hits) else hits
    if len(rows) == 0:
        return cps, offsets
    texts = _encode(cps, offsets)
    fixed = _pc.utf8_normalize(texts.take(rows), "NFC")
    lengths = np.diff(offsets)
    new_lengths = lengths.copy()
    fixed_cps, fixed_offsets = _decode(fixed)
    new_lengths[rows] = np.diff(fixed_offsets)
    new_offsets = np.concatenate([[0], np.cumsum(new_lengths)]).astype(np.int64)
    out = np.empty(int(new_offsets[-1]), dtype=np.uint32)
    is_fixed = np.zeros(len(lengths), dtype=np.bool_)
    is_fixed[rows] = True
    old_mask = np.repeat(~is_fixed, lengths)
    new_mask = np.repeat(~is_fixed, new_lengths)
    out[new_mask] = cps[old_mask]
    out[~new_mask] = fixed_cps
    return out, new_offsets


def _elongation(cps: Codepoints, offsets: Offsets) -> tuple[Codepoints, Offsets]:
    """A letter repeated three times or more, cut to two."""
    if len(cps) < 3:
        return cps, offsets
    repeat = np.zeros(len(cps), dtype=np.bool_)
    repeat[2:] = (cps[2:] == cps[1:-1]) & (cps[2:] == cps[:-2])
    if not repeat.any():
        return cps, offsets
    # Letters only, and not across the start of a text.
    at = np.flatnonzero(repeat)
    repeat[at] = _lookup(cps[at], letters=True)
    starts = offsets[:-1]
    for k in (0, 1):
        at = starts + k
        repeat[at[at < len(cps)]] = False
    return _compact(cps, offsets, ~repeat)


def _holds(array: Any, needles: tuple[str, ...]) -> bool:
    """Whether any text holds any of ``needles``."""
    return any(_pc.any(_pc.match_substring(array, n)).as_py() for n in needles)


def _as_array(texts: Any) -> Any:
    if isinstance(texts, pa.ChunkedArray):
        return texts.combine_chunks() if texts.num_chunks != 1 else texts.chunk(0)
    if isinstance(texts, pa.Array):
        return texts
    return pa.array(list(texts), type=pa.large_string())


def normalized_codepoints(
    texts: pa.Array[Any] | pa.ChunkedArray[Any] | Sequence[str | None],
    *,
    strip_hashtags: bool = False,
) -> tuple[Codepoints, Offsets]:
    """The normalised texts as one flat array of code points (``uint32``) and the
    offsets where each text starts (``len(texts) + 1`` of them); a null is empty.

    >>> cps, offsets = normalized_codepoints(["Ab!", None, "یہ"])
    >>> offsets.tolist(), [chr(c) for c in cps]
    ([0, 2, 2, 4], ['a', 'b', 'ی', 'ہ'])
    """
    array = _as_array(texts)
    if len(array) == 0:
        return np.zeros(0, dtype=np.uint32), np.zeros(1, dtype=np.int64)
    array = _pc.utf8_normalize(array.cast(pa.large_string()), "NFKC")
    # A regular expression is compiled on every call: run it only where it may match.
    if _holds(array, ("@", "://", "w.", "W.", *(("#",) if strip_hashtags else ()))):
        pattern = _LINKS + (_HASHTAGS if strip_hashtags else "")
        array = _pc.replace_substring_regex(array, pattern, " ")
    for sharp in ("ß", "ẞ"):
        if _holds(array, (sharp,)):
            array = _pc.replace_substring(array, sharp, "ss")
    cps, offsets = _decode(array)
    cps, offsets = _map(cps, offsets)
    cps, offsets = _recompose(cps, offsets)
    return _elongation(cps, offsets)


def normalize_array(
    texts: pa.Array[Any] | pa.ChunkedArray[Any] | Sequence[str | None],
    *,
    strip_hashtags: bool = False,
) -> pa.LargeStringArray:
    """:func:`normalize` over many texts at once; a null stays null.

    >>> normalize_array(["Eid Mubarak!!", None, "عید مُبارک"]).to_pylist()
    ['eid mubarak', None, 'عید مبارک']
    """
    array = _as_array(texts)
    cps, offsets = normalized_codepoints(array, strip_hashtags=strip_hashtags)
    out = _encode(cps, offsets)
    if array.null_count:
        out = _pc.if_else(_pc.is_null(array), pa.scalar(None, pa.large_string()), out)
    return out


def normalize(text: str, *, strip_hashtags: bool = False) -> str:
    """The normal form of one text (see the module's rules).

    >>> normalize("Yeh hamara MULK hai... #PakistanZindabad @pti")
    'yeh hamara mulk hai pakistanzindabad'
    >>> normalize("Yeh hamara MULK hai #PakistanZindabad", strip_hashtags=True)
    'yeh hamara mulk hai'
    """
    value = normalize_array([text], strip_hashtags=strip_hashtags)[0].as_py()
    return str(value)
