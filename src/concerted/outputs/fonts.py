"""Fonts for the scripts in the page, embedded so that no reader sees empty boxes.

Cases are often in scripts that a reader's machine has no font for (Urdu in the
Arabic script, Hindi in Devanagari): the page would show those names and texts as
boxes. For each script in :data:`FACES` that the page's text uses, the vendored Noto
font (SIL OFL 1.1, fetched by ``scripts/vendor_assets.sh``) is cut down to the
characters the page holds (fontTools) and inlined as an ``@font-face`` data URL whose
``unicode-range`` keeps it to that script; a page with none of them embeds no font.

Cut fonts keep every layout feature, so joining forms, ligatures and conjuncts still
shape, and the timestamp of the original font, so the same page gives the same bytes.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from fontTools import subset
from fontTools.ttLib import TTFont

__all__ = ["FACES", "Face", "font_faces", "scripts_in"]

# Joiners shape with the script around them; keep their glyphs in every cut font.
_JOINERS = "\u200c\u200d"


@dataclass(frozen=True, kw_only=True)
class Face:
    """A vendored font for one script (its file and licence in ``concerted/assets``), and
    the code points it is used for."""

    script: str
    family: str
    file: str
    licence: str
    ranges: tuple[tuple[int, int], ...]

    def covers(self, char: str) -> bool:
        code = ord(char)
        return any(low <= code <= high for low, high in self.ranges)

    def unicode_range(self) -> str:
        """The CSS ``unicode-range`` of the face.

        >>> FACES[1].unicode_range()
        'U+0900-097F, U+1CD0-1CFF, U+A8E0-A8FF'
        """
        return ", ".join(f"U+{low:04X}-{high:04X}" for low, high in self.ranges)


# The family names are the page's own, first in its font stacks (report.css), so a
# system font of the same name never replaces the embedded one.
FACES: tuple[Face, ...] = (
    Face(
        script="Arabic",
        family="Report Arabic",
        file="noto-naskh-arabic-arabic-400-normal.woff2",
        licence="LICENSE.noto-naskh-arabic",
        ranges=(
            (0x0600, 0x06FF),
            (0x0750, 0x077F),
            (0x0870, 0x08FF),
            (0xFB50, 0xFDFF),
            (0xFE70, 0xFEFF),
        ),
    ),
    Face(
        script="Devanagari",
        family="Report Devanagari",
        file="noto-sans-devanagari-devanagari-400-normal.woff2",
        licence="LICENSE.noto-sans-devanagari",
        ranges=((0x0900, 0x097F), (0x1CD0, 0x1CFF), (0xA8E0, 0xA8FF)),
    ),
)


def scripts_in(text: str) -> dict[str, str]:
    """The characters of ``text`` in each script of :data:`FACES`, sorted.

    >>> scripts_in("user ہے and यह")
    {'Arabic': 'ہے', 'Devanagari': 'यह'}
    >>> scripts_in("only Latin")
    {}
    """
    found: dict[str, set[str]] = {}
    for char in set(text):
        if char.isascii():
            continue
        for face in FACES:
            if face.covers(char):
                found.setdefault(face.script, set()).add(char)
    return {s: "".join(sorted(found[s])) for s in (f.script for f in FACES) if s in found}


@lru_cache(maxsize=16)
def _cut(file: str, chars: str) -> bytes:
    """``file`` (a vendored WOFF2) cut down to ``chars``, as WOFF2."""
    data = resources.files("concerted").joinpath("assets", file).read_bytes()
    font = TTFont(io.BytesIO(data), recalcTimestamp=False)
    options = subset.Options()
    options.flavor = "woff2"
    options.layout_features = ["*"]
    options.hinting = False
    options.notdef_outline = True
    cutter = subset.Subsetter(options)
    cutter.populate(text=chars + _JOINERS)
    cutter.subset(font)
    out = io.BytesIO()
    font.save(out, reorderTables=False)
    return out.getvalue()


def font_faces(text: str) -> str:
    """The ``@font-face`` rules of the scripts ``text`` uses, each font cut down to its
    characters; empty when it uses none."""
    used = scripts_in(text)
    rules = []
    for face in FACES:
        if face.script not in used:
            continue
        data = base64.b64encode(_cut(face.file, used[face.script])).decode("ascii")
        rules.append(
            f'@font-face {{ font-family: "{face.family}"; font-style: normal; '
            f"font-weight: 400; font-display: block; "
            f'src: url("data:font/woff2;base64,{data}") format("woff2"); '
            f"unicode-range: {face.unicode_range()}; }}"
        )
    return "\n".join(rules)
