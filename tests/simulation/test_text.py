"""Synthetic text: determinism, shapes, scripts, and the properties the simulator relies on."""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from concerted.simulation import text as prose
from concerted.simulation.text import (
    LANGUAGES,
    NEWS_DOMAINS,
    OPERATION_DOMAINS,
    REPORT_REASONS,
    boast_text,
    critic_texts,
    edit_text,
    handles,
    hashtags,
    minority_texts,
    mobilisation_text,
    organic_texts,
    person_names,
    talking_points,
    url_paths,
)

MIXED = list(LANGUAGES) * 25

GENERATORS: dict[str, Callable[[np.random.Generator], Any]] = {
    "organic": lambda rng: organic_texts(rng, MIXED),
    "hashtags": lambda rng: hashtags(rng, MIXED, np.full(len(MIXED), 3)),
    "url_paths": lambda rng: url_paths(rng, 50),
    "talking_points": lambda rng: [talking_points(rng, lang, 20) for lang in LANGUAGES],
    "critic": lambda rng: [critic_texts(rng, lang, 20) for lang in LANGUAGES],
    "minority": lambda rng: [minority_texts(rng, lang, 20) for lang in LANGUAGES],
    "mobilisation": lambda rng: [
        mobilisation_text(rng, lang, targets=["t1", "t2"], report_links=["r1", "r2"], reason="spam")
        for lang in LANGUAGES * 5
    ],
    "boast": lambda rng: [boast_text(rng, lang, handles=["a", "b"]) for lang in LANGUAGES * 5],
    "edit": lambda rng: [edit_text(rng, "one two three four five six seven", 0.5)] * 5,
    "names": lambda rng: person_names(rng, MIXED),
    "handles": lambda rng: handles(rng, ["Ahmed Khan"] * 50, np.full(50, 3)),
}


def letters(text: str) -> list[str]:
    return [ch for ch in text if ch.isalpha()]


def in_script(text: str, lang: str) -> bool:
    """True when the text has letters and all are in the language's script."""
    found = letters(text)
    if lang == "ur":
        return bool(found) and all("\u0600" <= ch <= "\u06ff" for ch in found)
    if lang == "hi":
        return bool(found) and all("\u0900" <= ch <= "\u097f" for ch in found)
    return bool(found) and all(ch.isascii() for ch in found)


def shingles(text: str) -> set[str]:
    return {text[i : i + 5] for i in range(len(text) - 4)}


def jaccard(a: str, b: str) -> float:
    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_seed_fixes_output(name: str) -> None:
    make = GENERATORS[name]
    first = make(np.random.default_rng(11))
    assert first == make(np.random.default_rng(11))
    assert first != make(np.random.default_rng(12))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_organic_texts_are_in_the_script_of_their_language(lang: str) -> None:
    texts = organic_texts(np.random.default_rng(1), [lang] * 300, min_words=3, max_words=9)
    assert len(texts) == 300
    assert all(in_script(t, lang) for t in texts)
    words = [len([w for w in t.split() if letters(w)]) for t in texts]
    assert min(words) >= 3 and max(words) <= 9
    assert len(set(texts)) > 290


def test_urdu_uses_urdu_letters_not_arabic_ones() -> None:
    text = " ".join(organic_texts(np.random.default_rng(2), ["ur"] * 500))
    text += " ".join(talking_points(np.random.default_rng(2), "ur", 200))
    text += prose._BANKS["ur"] + prose._TAGS["ur"] + prose._PK_GIVEN + prose._PK_FAMILY
    assert {"ک", "ی", "ہ", "ے", "ں", "ٹ"} <= set(text)
    assert not {"\u0643", "\u064a", "\u0649"} & set(text)  # Arabic kaf, yeh, alef maksura


def test_organic_texts_follow_the_order_of_langs() -> None:
    langs = ["hi", "en", "ur", "ur-Latn", "ur", "hi"]
    texts = organic_texts(np.random.default_rng(3), langs)
    assert [in_script(t, lang) for t, lang in zip(texts, langs, strict=True)] == [True] * 6


def test_organic_words_are_zipf_like() -> None:
    texts = organic_texts(np.random.default_rng(4), ["en"] * 20_000)
    counts = [c for _, c in Counter(" ".join(texts).split()).most_common()]
    assert counts[0] > 2 * counts[9] > 4 * counts[99]
    assert len(counts) >= 150


def test_organic_texts_in_bulk() -> None:
    langs = [LANGUAGES[i] for i in np.random.default_rng(5).integers(0, 4, 200_000)]
    texts = organic_texts(np.random.default_rng(5), langs)
    assert len(texts) == 200_000
    assert all(in_script(texts[i], langs[i]) for i in range(0, 200_000, 997))


def test_organic_texts_reject_bad_input() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown language"):
        organic_texts(rng, ["en", "fr"])
    with pytest.raises(ValueError):
        organic_texts(rng, ["en"], min_words=5, max_words=4)
    assert organic_texts(rng, []) == []


def test_vocabularies_are_large_enough() -> None:
    for lang in LANGUAGES:
        assert len(set(prose._WORDS[lang].split())) >= 150
        assert len(set(prose._TAGS[lang].split())) >= 55


def test_hashtags_counts_distinct_and_shape() -> None:
    rng = np.random.default_rng(6)
    counts = rng.integers(0, 6, size=len(MIXED) * 20)
    langs = MIXED * 20
    tags = hashtags(rng, langs, counts)
    assert [len(t) for t in tags] == counts.tolist()
    assert all(len(set(t)) == len(t) for t in tags)
    for post, lang in zip(tags, langs, strict=True):
        for tag in post:
            assert re.fullmatch(r"[^\s#.,!?]+", tag), tag
            if lang in ("en", "ur-Latn"):
                assert tag.isascii()
    ur = {t for post, lang in zip(tags, langs, strict=True) if lang == "ur" for t in post}
    assert any(in_script(t, "ur") for t in ur) and any(t.isascii() for t in ur)


def test_hashtags_reject_bad_counts() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        hashtags(rng, ["en", "ur"], np.array([1]))
    with pytest.raises(ValueError):
        hashtags(rng, ["en"], np.array([-1]))
    with pytest.raises(ValueError):
        hashtags(rng, ["en"], np.array([1000]))


def test_domains() -> None:
    assert len(NEWS_DOMAINS) >= 40 and len(set(NEWS_DOMAINS)) == len(NEWS_DOMAINS)
    assert {"dawn.com", "bbc.co.uk", "youtube.com", "geo.tv", "thehindu.com"} <= set(NEWS_DOMAINS)
    assert len(OPERATION_DOMAINS) >= 12
    assert all(d.endswith(".example") for d in OPERATION_DOMAINS)
    assert not any(d.endswith(".example") for d in NEWS_DOMAINS)


def test_url_paths() -> None:
    paths = url_paths(np.random.default_rng(7), 500)
    assert len(paths) == 500
    assert all(re.fullmatch(r"/[a-z0-9/-]+", p) for p in paths)
    assert any(re.search(r"/20\d\d/\d\d/\d\d/", p) for p in paths)
    assert len(set(paths)) == 500


@pytest.mark.parametrize("lang", LANGUAGES)
def test_talking_points(lang: str) -> None:
    points = talking_points(np.random.default_rng(8), lang, 500)
    assert len(points) == 500 and len(set(points)) == 500
    assert all(10 <= len(p.split()) <= 30 for p in points)
    assert all(in_script(p, lang) for p in points)


def test_talking_points_reject_impossible_requests() -> None:
    with pytest.raises(ValueError, match="distinct"):
        talking_points(np.random.default_rng(0), "en", 10**7)
    with pytest.raises(ValueError, match="unknown language"):
        talking_points(np.random.default_rng(0), "de", 1)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("make", [critic_texts, minority_texts])
def test_critic_and_minority_texts(
    make: Callable[[np.random.Generator, str, int], list[str]], lang: str
) -> None:
    texts = make(np.random.default_rng(9), lang, 300)
    assert len(texts) == 300 and len(set(texts)) == 300  # organic voices are not copy-paste
    assert all(in_script(t, lang) for t in texts)
    assert len(make(np.random.default_rng(9), lang, 10_000)) == 10_000  # repeats once exhausted


def test_every_template_uses_every_slot() -> None:
    # Distinct slot choices give distinct texts only if no template ignores a slot.
    for lang, banks in prose._TEXT.items():
        assert set(banks) >= {"talk", "critic", "minority", "mobilise", "boast", "reasons"}
        assert set(banks["reasons"].slots) == set(REPORT_REASONS), lang
        for name in ("talk", "critic", "minority"):
            bank = banks[name]
            for template in bank.templates:
                fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
                assert fields == set(bank.slots), (lang, name, template)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_mobilisation_text_lists_targets_in_order(lang: str) -> None:
    n = 80
    targets = [f"https://social.example/profile/{i}" for i in range(n)]
    links = [f"https://social.example/report?id={i}" for i in range(n)]
    text = mobilisation_text(
        np.random.default_rng(10), lang, targets=targets, report_links=links, reason="hate_speech"
    )
    lines = text.split("\n")
    assert len(lines) == n + 3
    pos = 0
    for target, link in zip(targets, links, strict=True):
        pos = text.index(target + " ", pos)
        pos = text.index(link, pos)
    assert "hate_speech" not in text  # the reason is shown as a label
    assert all(in_script(line, lang) for line in (lines[0], lines[1], lines[-1]))
    assert lines[2].startswith("1. ") and lines[-2].startswith(f"{n}. ")


def test_mobilisation_text_reason_labels_and_errors() -> None:
    rng = np.random.default_rng(0)
    labels = {
        mobilisation_text(rng, "en", targets=["a"], report_links=["b"], reason=r).split("\n")[1]
        for r in REPORT_REASONS
    }
    assert len(labels) == len(REPORT_REASONS)
    odd = mobilisation_text(rng, "en", targets=[], report_links=[], reason="copyright_claim")
    assert "Copyright claim" in odd
    with pytest.raises(ValueError):
        mobilisation_text(rng, "en", targets=["a", "b"], report_links=["x"], reason="spam")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_boast_text_mentions_every_handle(lang: str) -> None:
    names = [f"user{i}_x" for i in range(12)]
    text = boast_text(np.random.default_rng(11), lang, handles=names)
    assert all(f"@{h} " in text or text.endswith(f"@{h}") for h in names)
    assert "12" in text
    assert in_script(re.sub(r"@\S+", "", text), lang)


def test_edit_text_rate_zero_is_identity() -> None:
    rng = np.random.default_rng(12)
    for text in organic_texts(rng, MIXED) + ["", "  spaced\n out  "]:
        assert edit_text(rng, text, 0.0) == text
    with pytest.raises(ValueError):
        edit_text(rng, "x", 1.5)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_edit_text_keeps_most_of_the_text(lang: str) -> None:
    rng = np.random.default_rng(13)
    texts = organic_texts(rng, [lang] * 100, min_words=20, max_words=24)
    edited = [edit_text(rng, t, 0.1) for t in texts]
    assert np.mean([jaccard(a, b) for a, b in zip(texts, edited, strict=True)]) >= 0.6
    assert sum(a != b for a, b in zip(texts, edited, strict=True)) >= 70


@pytest.mark.parametrize("lang", ["ur", "hi"])
def test_edit_text_never_strands_a_combining_mark(lang: str) -> None:
    rng = np.random.default_rng(14)
    for text in talking_points(rng, lang, 100):
        for token in edit_text(rng, text, 1.0).split():
            assert not unicodedata.category(token[0]).startswith("M"), token


def test_edit_text_keeps_line_structure() -> None:
    rng = np.random.default_rng(15)
    targets = [f"https://x.example/u{i}" for i in range(10)]
    links = [f"https://x.example/r{i}" for i in range(10)]
    text = mobilisation_text(rng, "ur", targets=targets, report_links=links, reason="spam")
    for _ in range(20):
        edited = edit_text(rng, text, 0.3)
        assert edited != text
        assert edited.count("\n") == text.count("\n")
        assert not edited.endswith(" ")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_person_names(lang: str) -> None:
    names = person_names(np.random.default_rng(16), [lang] * 400)
    assert len(names) == 400
    for display, roman in names:
        assert in_script(display, lang) and roman.isascii()
        assert len(display.split()) == len(roman.split()) == 2
        if lang in ("en", "ur-Latn"):
            assert display == roman
    assert len(set(names)) > 200


def test_handles() -> None:
    rng = np.random.default_rng(17)
    roman = [r for _, r in person_names(rng, MIXED * 4)] + ["Zoë O'Neil"]
    runs = rng.integers(0, 6, size=len(roman))
    made = handles(rng, roman, runs)
    assert len(made) == len(roman)
    assert all(re.fullmatch(r"[a-z0-9._]+", h) for h in made)
    for h, r in zip(made, runs.tolist(), strict=True):
        digits = re.search(r"[0-9]*$", h)
        assert digits is not None and len(digits.group()) == r
    assert made[-1].startswith("zoe")
    assert {"", ".", "_"} == {re.sub(r"[a-z0-9]", "", h) for h in made[:-1]}
    with pytest.raises(ValueError):
        handles(rng, ["a b"], np.array([1, 2]))
