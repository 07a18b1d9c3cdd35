"""Cutting JSON text into its top-level parts without recursion, whatever the nesting:
the items of a webhook batch, or documents one after another in a file. The fallback
for text a decoder refuses for its depth alone; each part then goes through the
too-deep salvage path (ktriage.core.salvage) like any record."""

from __future__ import annotations

import re

import msgspec

__all__ = ["NotAnObject", "Unsplittable", "split_documents", "split_top_level"]

# The non-recursive item splitter (see Splitter): its tokens (a JSON string, or one
# structural character), msgspec's word for where a first value ends, and its budget
# (about a second of scanning) and stride through deep quote-free stretches.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]')
_TRAILING = re.compile(r"trailing characters \(byte (\d+)\)")
_WS = re.compile(rb"[ \t\r\n]*")
SCAN_BUDGET = 500_000
STRETCH = 4096
_RAW = msgspec.json.Decoder(msgspec.Raw)


class NotAnObject(ValueError):
    """The text is neither a JSON object nor an array."""


class Unsplittable(Exception):
    """The rest of a body cannot be cut into items: cut short, malformed, or too costly
    to scan. `reason` is the skip reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.items: list[bytes] = []


class Splitter:
    """Cuts a JSON body into its top-level parts without recursion, whatever the nesting.

    The fallback for a body a decoder refuses for its depth alone. Each value's end is
    found by msgspec (in C: decoding stops at the end of the first value and says where
    the trailing characters start); only a value too deep for it is scanned here, in
    Python, skipping quote-free stretches whose brackets cannot close the value by
    counting them, and within a budget of tokens."""

    def __init__(self, body: bytes, budget: int = SCAN_BUDGET) -> None:
        self.body = body
        self.view = memoryview(body)
        self.budget = budget
        self.kind: str | None = None

    def skip_ws(self, pos: int) -> int:
        m = _WS.match(self.body, pos)
        return m.end() if m else pos

    def value_end(self, pos: int, *, top: bool = False) -> int:
        """Where the value starting at `pos` ends (exclusive, before any whitespace)."""
        try:
            _RAW.decode(self.view[pos:])
        except msgspec.DecodeError as exc:
            m = _TRAILING.search(str(exc))
            if m is not None:
                return self.trim(pos + int(m.group(1)) - 1)
        except RecursionError:
            pass
        else:
            return self.trim(len(self.body))
        return self.scan_end(pos, top=top)

    def trim(self, end: int) -> int:
        """`end` moved back over whitespace (without copying the body)."""
        body = self.body
        while end > 0 and body[end - 1] in b" \t\r\n":
            end -= 1
        return end

    def scan_end(self, pos: int, *, top: bool = False) -> int:
        """value_end by scanning: the first `,` `]` `}` outside the value (`top`: the
        value is a document of its own, ended by its own closing bracket)."""
        body = self.body
        depth = 0
        while True:
            if depth > 8:
                # Deep inside: a stretch with no string in it and fewer closing
                # brackets than the depth cannot end the value; count it whole.
                step = min(depth, STRETCH)
                block = body[pos : pos + step]
                if b'"' not in block:
                    closers = block.count(b"]") + block.count(b"}")
                    if closers < depth:
                        depth += block.count(b"[") + block.count(b"{") - closers
                        pos += len(block)
                        self._spend(1)
                        if pos >= len(body):
                            raise Unsplittable("truncated-json", "the body ends inside a value")
                        continue
            m = _TOKEN.search(body, pos)
            if m is None:
                raise Unsplittable("truncated-json", "the body ends inside a value")
            self._spend(1)
            c = body[m.start()]
            if c in b"[{":
                depth += 1
            elif c in b"]}":
                if depth == 0:
                    return self.trim(m.start())
                depth -= 1
                if top and depth == 0:
                    return m.end()
            elif c == 44 and depth == 0:  # ","
                return self.trim(m.start())
            pos = m.end()

    def _spend(self, n: int) -> None:
        self.budget -= n
        if self.budget < 0:
            raise Unsplittable("too-deep", "it is too costly to scan (too deeply nested)")

    def documents(self) -> tuple[list[tuple[int, int]], Unsplittable | None]:
        """The (start, end) of each document one after another (whitespace between),
        and why the rest could not be cut into documents (None when all of it could)."""
        spans: list[tuple[int, int]] = []
        pos = self.skip_ws(0)
        try:
            while pos < len(self.body):
                if self.body[pos : pos + 1] not in (b"{", b"["):
                    raise Unsplittable("malformed-json", f"expected a document at byte {pos}")
                end = self.value_end(pos, top=True)
                spans.append((pos, end))
                pos = self.skip_ws(end)
        except Unsplittable as exc:
            return spans, exc
        return spans, None

    def array(self, pos: int) -> tuple[list[bytes], int]:
        """The raw elements of the array at `pos`, and the position after it.
        Unsplittable (with the elements so far in `.items`) when cut short."""
        items: list[bytes] = []
        try:
            pos = self.skip_ws(pos + 1)
            if self.body[pos : pos + 1] == b"]":
                return items, pos + 1
            while True:
                end = self.value_end(pos)
                items.append(self.body[pos:end])
                pos = self.skip_ws(end)
                sep = self.body[pos : pos + 1]
                if sep == b"]":
                    return items, pos + 1
                if sep != b",":
                    raise Unsplittable("malformed-json", f"expected ',' or ']' at byte {pos}")
                pos = self.skip_ws(pos + 1)
        except Unsplittable as exc:
            exc.items = items
            raise

    def top_level(self) -> tuple[str | None, list[bytes], Unsplittable | None]:
        """(the `kind` string, the raw `items`, why the rest could not be split or None)
        of a top-level object; for a top-level array, (None, its elements, ...)."""
        body = self.body
        pos = self.skip_ws(0)
        head = body[pos : pos + 1]
        try:
            if head == b"[":
                items, _ = self.array(pos)
                return None, items, None
            if head != b"{":
                raise NotAnObject("expected a JSON object")
            items = []
            pos = self.skip_ws(pos + 1)
            while body[pos : pos + 1] not in (b"}", b""):
                key_end = self.value_end(pos)
                key = body[pos:key_end]
                pos = self.skip_ws(key_end)
                if body[pos : pos + 1] != b":":
                    raise Unsplittable("malformed-json", f"expected ':' at byte {pos}")
                pos = self.skip_ws(pos + 1)
                if key == b'"items"' and body[pos : pos + 1] == b"[":
                    items, pos = self.array(pos)
                else:
                    end = self.value_end(pos)
                    if key == b'"kind"':
                        try:
                            self.kind = msgspec.json.decode(body[pos:end], type=str)
                        except msgspec.DecodeError:
                            self.kind = None
                    pos = end
                pos = self.skip_ws(pos)
                if body[pos : pos + 1] == b",":
                    pos = self.skip_ws(pos + 1)
            return self.kind, items, None
        except Unsplittable as exc:
            return self.kind, exc.items, exc


def split_top_level(body: bytes) -> tuple[str | None, list[bytes], Unsplittable | None]:
    """The `kind` and raw `items` of a top-level JSON object (or the elements of a
    top-level array), without recursion, and why the rest could not be split (None when
    all of it could). See Splitter."""
    return Splitter(body).top_level()


def split_documents(
    data: bytes, budget: int = SCAN_BUDGET
) -> tuple[list[tuple[int, int]], Unsplittable | None]:
    """Where each of several JSON documents one after another (pretty-printed or not)
    starts and ends, without recursion, and why the rest could not be cut (None when
    all of it could). See Splitter."""
    return Splitter(data, budget).documents()
