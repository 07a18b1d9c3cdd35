"""Text that hides is shown: tabs, zero-width, bidi, BOM, separators, C1 and every
other invisible format character reach no output raw."""

from __future__ import annotations

import json
import sys
import unicodedata

import pytest

from ktriage.core.model import Event, Severity
from ktriage.core.text import printable, shown

HIDDEN = {
    "tab": ("kube\tsystem", "kube\\tsystem"),
    "zero_width_space": ("kube\u200b-system", "kube\\u200b-system"),
    "zero_width_joiner": ("a\u200db", "a\\u200db"),
    "left_to_right_mark": ("a\u200eb", "a\\u200eb"),
    "right_to_left_mark": ("a\u200fb", "a\\u200fb"),
    "arabic_letter_mark": ("a\u061cb", "a\\u061cb"),
    "rtl_override": ("evil\u202etxt.exe", "evil\\u202etxt.exe"),
    "isolate": ("a\u2066b\u2069", "a\\u2066b\\u2069"),
    "word_joiner": ("a\u2060b", "a\\u2060b"),
    "bom": ("\ufeffkube-system", "\\ufeffkube-system"),
    "line_separator": ("a\u2028b", "a\\u2028b"),
    "paragraph_separator": ("a\u2029b", "a\\u2029b"),
    "c1_next_line": ("a\x85b", "a\\x85b"),
    "c1_csi": ("a\x9b2Jb", "a\\x9b2Jb"),
    "soft_hyphen": ("kube\xadsystem", "kube\\xadsystem"),
    "tag_character": ("a\U000e0041b", "a\\U000e0041b"),
    "hangul_filler": ("a\u3164b", "a\\u3164b"),
    "escape": ("a\x1b[2Jb", "a\\x1b[2Jb"),
}


@pytest.mark.parametrize(("text", "expected"), HIDDEN.values(), ids=list(HIDDEN))
def test_hostile_hidden_text_is_shown_escaped(text: str, expected: str) -> None:
    assert printable(text) == expected
    assert shown(text) == expected


def test_hostile_hidden_text_every_format_character_is_escaped() -> None:
    # Every Cc, Cf, Zl and Zp character this Python knows, whatever Unicode version.
    hidden = [
        chr(c)
        for c in range(sys.maxunicode + 1)
        if unicodedata.category(chr(c)) in ("Cc", "Cf", "Zl", "Zp")
    ]
    text = "x".join(hidden)
    out = printable(text)
    assert out.isprintable(), [c for c in out if not c.isprintable()][:5]
    assert printable(text, keep_newlines=True).replace("\n", "").isprintable()


def test_hostile_hidden_text_keep_newlines_keeps_only_newlines() -> None:
    assert printable("a\tb\nc\u200bd\r\n", keep_newlines=True) == "a\\tb\nc\\u200bd\\r\n"


def test_hostile_hidden_text_ordinary_unicode_is_left_alone() -> None:
    for text in ("café", "日本語のラベル", "naïve → done", "a\u00a0b"):
        assert printable(text) == text


def test_hostile_hidden_text_in_the_replay_json_ref_and_summary() -> None:
    ev = Event(
        time=1.0,
        source="audit",
        ref="id-\x85\u200b\u202e-1",
        kind="exec\t",
        severity=Severity.HIGH,
        summary="exec into kube\u200b-system/x\ttab",
    )
    line = json.dumps(ev.as_dict(), ensure_ascii=False)
    for ch in ("\x85", "\u200b", "\u202e", "\t"):
        assert ch not in line
    back = json.loads(line)
    assert back["ref"] == "id-\\x85\\u200b\\u202e-1"
    assert back["summary"] == "exec into kube\\u200b-system/x\\ttab"
