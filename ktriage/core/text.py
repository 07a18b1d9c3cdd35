"""Making untrusted text safe to show: no control characters, no escape sequences,
nothing invisible, no secrets.

Pod names, commands, log lines and alert outputs come from the attacker's side.
Everything that reaches a terminal or a file goes through `shown` (redaction,
then `printable`), so an OSC 52 clipboard write or a cursor move is shown as
text, never executed, and `kube\\u200b-system` never passes for `kube-system`.
"""

from __future__ import annotations

import functools
import re

from ktriage.core.redact import redact_text

# Shown escaped: C0 controls (tab included: it breaks column layouts and pane
# borders), DEL, C1 controls (U+0080..U+009F); every invisible format character
# (Unicode category Cf: soft hyphen, zero-width space/joiners, bidi marks,
# embeddings, overrides and isolates, word joiner, invisible operators, BOM,
# interlinear annotations, tags...); line and paragraph separators; the Hangul
# fillers that render as blank letters.
_HIDDEN_BUT_NEWLINE = (
    "\x00-\x09\x0b-\x1f\x7f-\x9f\xad"
    "\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
    "\u115f\u1160\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f"
    "\u3164\ufeff\uffa0\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
_CONTROL = re.compile(f"[\n{_HIDDEN_BUT_NEWLINE}]")
# For text (logs, JSON bodies) that keeps its lines.
_CONTROL_KEEP_NEWLINES = re.compile(f"[{_HIDDEN_BUT_NEWLINE}]")
# The only escaped characters str.isprintable() lets through (they are letters).
_FILLERS = re.compile("[\u115f\u1160\u3164\uffa0]")

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\x1b"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group(0)
    named = _NAMED.get(ch)
    if named:
        return named
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """Return `text` with every control or invisible character shown as a visible
    escape (`\\t`, `\\x1b`, `\\u200b`); newlines stay when `keep_newlines`."""
    # str.isprintable() is false for every character escaped here but the Hangul
    # fillers (and for a few harmless ones, such as a no-break space): a fast exit
    # for ordinary text.
    if text.isprintable() and (text.isascii() or not _FILLERS.search(text)):
        return text
    if keep_newlines:
        return _CONTROL_KEEP_NEWLINES.sub(_escape, text)
    return _CONTROL.sub(_escape, text)


def shown(text: object, *, keep_newlines: bool = False, cache: bool = True) -> str:
    """Untrusted text made safe to display or write: secrets redacted, then every
    control or invisible character escaped. Every exit calls this. `cache=False`
    for texts shown once (a report's): they would only push the panes' out."""
    if type(text) is str and text in _SHOWN_AS_IS:
        return text
    text = str(text)
    if keep_newlines:
        return printable(redact_text(text), keep_newlines=True)
    if cache and len(text) <= _CACHED_LENGTH:
        return _shown_short(text)
    return printable(redact_text(text))


# Panes redraw and headless output reprints an incident's events on every change:
# the same short strings are shown again and again.
_CACHED_LENGTH = 512


@functools.lru_cache(maxsize=8192)
def _shown_short(text: str) -> str:
    return printable(redact_text(text))


# Texts a parser found to be their own `shown` form as it made them safe (redaction
# found nothing to take out, nothing needed an escape, nothing was cut): `shown`
# gives them back as they are instead of looking again. A text is kept whole, so
# what is here is its own shown form by its content, whatever holds it. Bounded:
# it only spares work.
_SHOWN_AS_IS: set[str] = set()
SHOWN_AS_IS_MAX = 1 << 16


def mark_shown(text: str) -> None:
    """Say that `text` is its own `shown` form (`shown(text) == text`)."""
    if len(_SHOWN_AS_IS) >= SHOWN_AS_IS_MAX:
        _SHOWN_AS_IS.clear()
    _SHOWN_AS_IS.add(text)


def clip(text: str, width: int) -> str:
    """Shorten to `width` characters with an ellipsis."""
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…"


def clip_middle(text: str, width: int) -> str:
    """Shorten to `width` characters by cutting out the middle (a pod's name keeps the
    replica suffix that tells it from its siblings; a file keeps its extension)."""
    if len(text) <= width:
        return text
    if width < 3:
        return clip(text, width)
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


def clip_words(text: str, width: int) -> str:
    """Shorten to at most `width` characters at a word boundary, with an ellipsis;
    a first word longer than `width` is cut (nothing else would fit)."""
    if len(text) <= width:
        return text
    head = text[: max(width - 1, 0)]
    cut = head.rfind(" ")
    if cut > 0 and text[len(head)] != " ":
        head = head[:cut]
    return head.rstrip(" ,;:") + "…"
