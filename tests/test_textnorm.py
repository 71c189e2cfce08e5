"""Text normalisation: real strings in each script, and the invariants."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from concerted.textnorm import normalize, normalize_array, normalized_codepoints
from tests.budget import examples

# (text, its normal form), as people post them.
EXAMPLES = [
    # English: case, punctuation, emoji, links, mentions, apostrophes.
    (
        "BREAKING: Our Army is the PRIDE of the nation!!! 🇵🇰 https://t.co/AbC123 @DefenceWatch",
        "breaking our army is the pride of the nation",
    ),
    (
        "Don’t believe the paid ‘journalists’, they don't care.",
        "dont believe the paid journalists they dont care",
    ),
    ("see www.Example.com/x and HTTP://X.COM/Y now", "see and now"),
    ("   spaces\t\tand\nlines   ", "spaces and lines"),
    ("ＰＡＫＩＳＴＡＮ ZINDABAD", "pakistan zindabad"),
    ("Straße", "strasse"),
    ("Pak\u200bistan", "pakistan"),
    ("Prices up by 1,000 rupees (₹500)", "prices up by 1000 rupees 500"),
    # Urdu: hashtags keep their words, diacritics and tatweel go, keyboard variants meet.
    ("ہماری فوج زندہ باد! #پاکستان_زندہ_باد", "ہماری فوج زندہ باد پاکستان زندہ باد"),
    ("پاكستان زنده باد", "پاکستان زندہ باد"),
    ("اَلْحَمْدُ لِلّٰہ", "الحمد للہ"),
    ("پاکســـتان", "پاکستان"),
    ("۱۴ اگست ۱۹۴۷ کو پاکستان بنا۔", "14 اگست 1947 کو پاکستان بنا"),
    ("٢٠٢٠ میں", "2020 میں"),
    ("پاک\u200cستان", "پاکستان"),
    ("\u202bپاکستان\u202c", "پاکستان"),
    ("آج أحمد إسلام", "اج احمد اسلام"),
    ("مدرسة", "مدرسہ"),
    ("ﻻ", "لا"),
    # Hindi: digits, danda, nukta, candrabindu.
    ("भारत माता की जय!!! १५ अगस्त", "भारत माता की जय 15 अगस्त"),
    ("यह सच है। हम साथ हैं॥", "यह सच है हम साथ हैं"),
    ("ज़िंदगी", "जिंदगी"),
    ("हाँ", "हां"),
    # Romanised Urdu: elongation, case, emoji.
    (
        "Pakistan Zindabaaaad!!! Humari FAUJ hamara fakhar hai 💚",
        "pakistan zindabaad humari fauj hamara fakhar hai",
    ),
    ("Yeh hamara MULK hai... #PakistanZindabad @pti", "yeh hamara mulk hai pakistanzindabad"),
]


@pytest.mark.parametrize(("text", "expected"), EXAMPLES)
def test_real_strings(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("one", "other"),
    [
        # The Arabic keyboard and the Urdu keyboard.
        ("كيا آپ نے يه ديكها؟", "کیا آپ نے یہ دیکھا"),
        # The ligature of Allah, and the word spelled out with Arabic heh.
        ("ﷲ", "الله"),
        # Precomposed and decomposed nukta, and none.
        ("\u095bिंदगी", "ज़िंदगी"),
        ("ज़िंदगी", "जिंदगी"),
        # Combining accent and precomposed letter.
        ("cafe\u0301", "café"),
        # Yeh barree typed as Farsi yeh.
        ("ہمارے لیے", "ہماری لیی"),
    ],
)
def test_variants_meet(one: str, other: str) -> None:
    assert normalize(one) == normalize(other)


def test_hashtags_stripped_when_asked() -> None:
    text = "Yeh hamara MULK hai #PakistanZindabad #پاکستان_زندہ_باد"
    assert normalize(text) == "yeh hamara mulk hai pakistanzindabad پاکستان زندہ باد"
    assert normalize(text, strip_hashtags=True) == "yeh hamara mulk hai"


def test_digit_groups_stay_inside_one_text() -> None:
    assert normalize_array(["price 5,", "5 rupees"]).to_pylist() == ["price 5", "5 rupees"]
    assert normalize("1,000 and ٢٬٠٠٠ and 1.5") == "1000 and 2000 and 1 5"


def test_nulls_and_empty_texts() -> None:
    out = normalize_array(["A", None, "", "!!!", "  "])
    assert out.to_pylist() == ["a", None, "", "", ""]
    assert normalize_array([]).to_pylist() == []
    chunked = pa.chunked_array([["Hello"], [None, "WORLD"]])
    assert normalize_array(chunked).to_pylist() == ["hello", None, "world"]


def test_codepoints_are_the_normal_form() -> None:
    texts = [text for text, _ in EXAMPLES] + [None, ""]
    cps, offsets = normalized_codepoints(texts)
    assert offsets.dtype == np.int64 and cps.dtype == np.uint32
    assert len(offsets) == len(texts) + 1
    rebuilt = ["".join(map(chr, cps[a:b])) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    assert rebuilt == [normalize(t) if t is not None else "" for t in texts]


# Characters from the scripts concerted reads, with the marks, digits, invisible
# characters and symbols that copies carry, and any other character now and then.
_ALPHABET = st.one_of(
    st.sampled_from(
        list("abcXYZ ßẞİıſﬁ'’,.!?#@_-:/")
        + [chr(c) for c in range(0x0600, 0x0700, 3)]
        + [chr(c) for c in range(0x0900, 0x0980, 2)]
        + list("\u200b\u200c\u200d\u200e\u200f\u202a\u202e\u2066\u2069\ufeff\u00ad\ufe0f")
        + list("\u0301\u0327\u0654\u0670\u093c\u0901\u0640 \t\n\u00a0\u3000")
        + list("ﻻﷲＡ１٣۳३🇵🇰💚👍🏽")
    ),
    st.characters(codec="utf-8"),
)
_TEXTS = st.text(alphabet=_ALPHABET, max_size=40)


@settings(max_examples=examples(400), deadline=None)
@given(text=_TEXTS, strip=st.booleans())
def test_normalising_twice_changes_nothing(text: str, strip: bool) -> None:
    once = normalize(text, strip_hashtags=strip)
    assert normalize(once, strip_hashtags=strip) == once


@settings(max_examples=examples(200), deadline=None)
@given(text=_TEXTS)
@example(text="Ꭰ ꭰ")
def test_the_normal_form_is_trimmed_single_spaced_and_case_folded(text: str) -> None:
    out = normalize(text)
    assert out == out.strip()
    assert "  " not in out
    assert all(not c.isspace() or c == " " for c in out)
    # Case folded character by character, not lower-cased: Unicode folds Cherokee to
    # its capitals ('Ꭰ' stays). Folds into two characters (but 'ß') are not made.
    assert all(c.casefold() == c or len(c.casefold()) > 1 for c in out)


@settings(max_examples=examples(100), deadline=None)
@given(texts=st.lists(st.one_of(st.none(), _TEXTS), max_size=12))
def test_a_text_normalises_the_same_alone_or_in_a_batch(texts: list[str | None]) -> None:
    together = normalize_array(texts).to_pylist()
    alone = [None if t is None else normalize(t) for t in texts]
    assert together == alone
