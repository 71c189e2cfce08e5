"""The fonts the report embeds (concerted.outputs.fonts): only the scripts a page uses,
cut down to its characters, the same bytes every time. The browser side (the faces
load and draw the text, not boxes) is in test_report.py."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from concerted.outputs import fonts


def test_only_the_scripts_in_the_text_are_embedded() -> None:
    assert fonts.font_faces("Report them all, #nation, Привет") == ""
    urdu = fonts.font_faces("پاکستان زندہ باد")
    assert urdu.count("@font-face") == 1 and '"Report Arabic"' in urdu
    both = fonts.font_faces("پاکستان and भारत")
    assert re.findall(r'font-family: "([^"]+)"', both) == ["Report Arabic", "Report Devanagari"]
    assert "unicode-range: U+0900-097F" in both


def test_a_cut_font_holds_the_characters_used_and_is_deterministic() -> None:
    face = fonts.FACES[0]
    few = fonts._cut(face.file, "پا")
    more = fonts._cut(face.file, "پاکستان زندہ باد")
    assert (
        len(few)
        < len(more)
        < len(resources.files("concerted").joinpath("assets", face.file).read_bytes())
    )
    fonts._cut.cache_clear()
    assert fonts._cut(face.file, "پا") == few


@pytest.mark.parametrize("face", fonts.FACES, ids=lambda f: f.script)
def test_every_font_is_vendored_with_its_licence(face: fonts.Face) -> None:
    assets = resources.files("concerted").joinpath("assets")
    assert assets.joinpath(face.file).read_bytes()[:4] == b"wOF2"
    licence = assets.joinpath(face.licence).read_text(encoding="utf-8")
    assert "SIL Open Font License" in licence
