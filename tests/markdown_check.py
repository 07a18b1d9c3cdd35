"""What a Markdown renderer would read outside code spans: for tests that check
untrusted text cannot form markup, HTML, links or headings in a snapshot."""

from __future__ import annotations

import re

# A code span: a run of backticks closed by the next run of the same length.
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")


def outside_code_spans(line: str) -> str:
    """`line` with its code spans removed."""
    return _CODE_SPAN.sub("", line)


def code_spans(line: str) -> list[str]:
    """The contents of the code spans of `line` (one space of padding removed)."""
    out = []
    for match in _CODE_SPAN.finditer(line):
        body = match.group(2)
        if body.startswith(" ") and body.endswith(" ") and body.strip():
            body = body[1:-1]
        out.append(body)
    return out


def assert_inert(markdown: str) -> None:
    """No line of `markdown` holds, outside code spans and fenced blocks, anything
    that starts markup: HTML, a link or image, emphasis, an autolink or a break-out
    from a table cell; and no heading but ktriage's own."""
    fence = ""
    columns = 0  # cell separators of the table being read (0: none)
    for line in markdown.split("\n"):
        stripped = line.strip()
        if line.startswith("|") and not fence:
            # Every row of a table splits into as many cells as its header.
            pipes = len(re.findall(r"(?<!\\)\|", line))
            columns = columns or pipes
            assert pipes == columns, line
        else:
            columns = 0
        if fence:
            if stripped == fence:
                fence = ""
            continue
        match = re.match(r"(`{3,})", stripped)
        if match:
            fence = match.group(1)
            continue
        outside = outside_code_spans(line)
        assert "<" not in outside and ">" not in outside, line
        assert "[" not in outside and "](" not in outside, line
        assert "://" not in outside and "`" not in outside, line
        assert "\\" not in outside and "_" not in outside, line
        assert "\x1b" not in line and "\n" not in line, line
