"""Every redaction pattern runs in linear time on input an attacker shapes: a
credential word, a long run of one separator, then a character that does not fit
(the shape that made nested quantifiers backtrack exponentially)."""

from __future__ import annotations

import random
import re
import time

import pytest

from ktriage.core.redact import _PATTERNS, redact, redact_text
from ktriage.core.text import shown

# Words (and word-like starts) after which a pattern reads a separator and a value.
CREDENTIAL_WORDS = (
    "token",
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "credentials",
    "api_key",
    "apikey",
    "privatekey",
    "authorization",
    "cookie",
    "set-cookie",
    "bearer",
    "basic",
    "password=bearer",
    "token:basic",
    "--token",
    "--db-password",
    "--cookie",
    "-u",
    "--user",
    "-uadmin",
    "://",
    "://user",
    "%3a%2f%2fuser",
    "eyJ",
    "x_eyJhbGciOiJIUzI1NiJ9",
    "mysql",
    "mysql -u root",
    "sshpass -p",
    "redis-cli",
    "curl",
    "curl -b",
    "-----BEGIN PRIVATE KEY-----",
    "AKIA",
    "ghp_",
)
SEPARATORS = (" ", "\t", "%20", "+", "=", ":", '"', "'", '\\"', "%3a", "%25", "&command=")
# Characters that fit no value after a separator run.
TAILS = ("!", "-", '"', "@")
RUN = 5_000
# Linear runs take a few milliseconds; exponential ones never return.
BOUND_SECONDS = 0.5

COMPILED = [re.compile(p, re.IGNORECASE) for p in _PATTERNS]


def _slowest(pattern: re.Pattern[str], word: str) -> tuple[float, str]:
    worst = (0.0, "")
    for sep in SEPARATORS:
        for tail in TAILS:
            text = word + sep * RUN + tail
            started = time.process_time()
            pattern.sub("", text)
            elapsed = time.process_time() - started
            worst = max(worst, (elapsed, f"{word!r} + {sep!r} * {RUN} + {tail!r}"))
    return worst


@pytest.mark.parametrize("index", range(len(COMPILED)))
def test_hostile_redos_every_pattern_on_separator_runs(index: int) -> None:
    pattern = COMPILED[index]
    for word in CREDENTIAL_WORDS:
        elapsed, text = _slowest(pattern, word)
        assert elapsed < BOUND_SECONDS, f"pattern {index} took {elapsed:.2f}s on {text}"


@pytest.mark.parametrize(
    "text",
    [
        "--token" + " " * 30 + "-",
        "Bearer" + " " * 40 + "!",
        "password=bearer" + " " * 40 + '"',
        "--token" + "%20" * 40 + "-",
        "Basic" + "+" * 40 + "!",
        "mysql" + " x" * 40 + " -",
        "https://" + "u" * 20_000 + ":" + "p" * 20_000,
    ],
    ids=["flag", "bearer", "scheme", "flag_pct20", "basic_plus", "mysql_words", "userinfo"],
)
def test_hostile_redos_red_team_reproductions_return_at_once(text: str) -> None:
    started = time.process_time()
    redact_text(text)
    shown(text)
    redact({"args": [text], "env": [{"name": "TOKEN", "value": text}]})
    assert time.process_time() - started < BOUND_SECONDS


def _literal_pieces() -> list[str]:
    # The patterns' own literal pieces: the words, separators and tails above, and
    # the characters the value classes stop at.
    return [*CREDENTIAL_WORDS, *SEPARATORS, *TAILS, "a", "Z9", "@", "/", "%40", ".", "&", ";"]


def _best_time(text: str) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        redact_text(text)
        best = min(best, time.process_time() - started)
    return best


def test_hostile_redos_random_mixes_of_literal_pieces_grow_linearly() -> None:
    pieces = _literal_pieces()
    rng = random.Random(20261203)
    for _ in range(5):
        size = 20_000
        small = "".join(rng.choice(pieces) for _ in range(size))
        # The doubled text repeats no piece sequence of the first: a fresh draw.
        large = "".join(rng.choice(pieces) for _ in range(2 * size))
        small_time, large_time = _best_time(small), _best_time(large)
        # Twice the size, at most about twice the time (3x leaves room for noise).
        assert large_time <= 3 * small_time + 0.005, (small_time, large_time)
