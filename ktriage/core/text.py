"""Making untrusted text safe to show: no control characters, no escape sequences.

Pod names, commands, log lines and alert outputs come from the attacker's side.
Everything that reaches a terminal or a file goes through `printable` first, so
an OSC 52 clipboard write or a cursor move is shown as text, never executed.
"""

from __future__ import annotations

import re

# C0 controls except tab, DEL, and C1 controls (U+0080..U+009F); also the
# Unicode bidi overrides that can make text read backwards.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

_NAMED = {"\n": "\\n", "\r": "\\r", "\x1b": "\\x1b"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group(0)
    named = _NAMED.get(ch)
    if named:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """Return `text` with every control character shown as a visible escape."""
    if keep_newlines:
        return "\n".join(_CONTROL.sub(_escape, part) for part in text.split("\n"))
    return _CONTROL.sub(_escape, text)


def clip(text: str, width: int) -> str:
    """Shorten to `width` characters with an ellipsis."""
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…"
