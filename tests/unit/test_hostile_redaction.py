"""One redactor for every exit: secrets of every kind, in text and in records,
whatever the length; no over-redaction of ordinary words; linear time."""

from __future__ import annotations

import random
import re
import time

import pytest
from secret_corpus import CORPUS, JWT, OPAQUE, ORDINARY

from ktriage.core.parse import plain
from ktriage.core.redact import (
    _SECRET_ANY,
    REDACTED,
    might_hold_secret,
    redact,
    redact_text,
    secret_name,
)
from ktriage.core.text import shown

IDS = [name for name, _, _ in CORPUS]


@pytest.mark.parametrize(("name", "text", "secret"), CORPUS, ids=IDS)
def test_hostile_secret_corpus_is_redacted_in_text(name: str, text: str, secret: str) -> None:
    out = redact_text(text)
    assert secret not in out, out
    assert REDACTED in out
    # Idempotent: what is shown once is shown the same again, with whatever follows
    # it (a record dumped as JSON is redacted again as a whole).
    for tail in ("", " tail", '", "next": "kept"}', "\n-----END RSA PRIVATE KEY----- x"):
        assert redact_text(out + tail) == out + tail


@pytest.mark.parametrize(("name", "text", "secret"), CORPUS, ids=IDS)
def test_hostile_secret_corpus_trips_the_prefilter(name: str, text: str, secret: str) -> None:
    assert might_hold_secret(text)


@pytest.mark.parametrize(("name", "text", "secret"), CORPUS, ids=IDS)
def test_hostile_secret_short_summaries_are_redacted_whatever_the_length(
    name: str, text: str, secret: str
) -> None:
    # Parse-time summaries (short and printable ones included) and the exit both.
    assert secret not in plain(text)
    assert secret not in shown(text)
    assert secret not in shown(text + "\x1b[2J\u200b")


def test_hostile_secret_fuzzed_mixes_never_escape_the_prefilter() -> None:
    # Every match of the full regex, anywhere in a mix of corpus pieces, ordinary
    # text and separators, must be seen by the prefilter: otherwise it is skipped.
    full = re.compile(_SECRET_ANY, re.IGNORECASE)
    pieces = [t for _, t, _ in CORPUS] + list(ORDINARY)
    fragments = [p[i : i + n] for p in pieces for i in range(0, len(p), 7) for n in (5, 12)]
    joins = [" ", "", "=", ":", "&", "%20", '"', "'", "\t", "\n", "-", "_", "+", "/"]
    rng = random.Random(20261203)
    for _ in range(5_000):
        text = "".join(rng.choice(fragments) + rng.choice(joins) for _ in range(rng.randint(1, 5)))
        if full.search(text):
            assert might_hold_secret(text), text


def test_hostile_secret_ordinary_words_stay_readable() -> None:
    for text in ORDINARY:
        assert redact_text(text) == text


def test_hostile_secret_keeps_the_name_and_hides_only_the_value() -> None:
    assert redact_text(f"GET /x?token={OPAQUE}&watch=1") == f"GET /x?token={REDACTED}&watch=1"
    assert redact_text(f"curl -u bob:{OPAQUE} x") == f"curl -u bob:{REDACTED} x"
    assert redact_text(f"https://bob:{OPAQUE}@h/") == f"https://bob:{REDACTED}@h/"
    assert redact_text(f"Authorization: Bearer {JWT}") == f"Authorization: {REDACTED}"
    assert redact_text(f'"password": "{OPAQUE}"') == f'"password": "{REDACTED}"'


ADVERSARIAL = {
    "jwt_heads": "eyJ" * 350_000,
    "names_without_values": "token " * 175_000,
    "separator_then_spaces": "token=" + " " * (1 << 20),
    "flags": "--token " * 131_000,
    "user_flags": "-u" + "a" * (1 << 20),
    "userinfo_without_at": "%3a%2f%2f" * 116_000,
    "schemes": "://" * 350_000,
    "bearer_lowercase": "Bearer " + "a" * (1 << 20),
    "key_blocks": "-----BEGIN PRIVATE KEY-----" * 39_000,
    "aws_prefixes": "AKIA" * 262_000,
    "mixed": "token=abc eyJ --password -u a:b Bearer x ://u:p@ %3A " * 20_000,
}


@pytest.mark.parametrize("text", ADVERSARIAL.values(), ids=list(ADVERSARIAL))
def test_hostile_secret_one_mebibyte_adversarial_string_is_linear(text: str) -> None:
    assert len(text) >= 1_000_000
    started = time.perf_counter()
    redact_text(text)
    # Linear runs take well under a second here; a quadratic one takes hours.
    assert time.perf_counter() - started < 10.0


def test_hostile_secret_env_values_named_secret_are_redacted_in_records() -> None:
    pod = {
        "kind": "Pod",
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "args": ["--token", OPAQUE, "--verbose", "-u", f"bob:{OPAQUE}x"],
                    "env": [
                        {"name": "DB_PASSWORD", "value": "hunter2-db"},
                        {"name": "AWS_SECRET_ACCESS_KEY", "value": "aws-secret-1"},
                        {"name": "githubToken", "value": "gh-token-1"},
                        {"name": "PGPASSWORD", "value": "pg-pass-1"},
                        {"name": "DB_PASSWORD_FILE", "value": "/run/secrets/db"},
                        {"name": "HOME", "value": "/root"},
                        {"name": "KEYCLOAK_URL", "value": "https://sso"},
                    ],
                }
            ]
        },
    }
    out = redact(pod)
    text = repr(out)
    for secret in (OPAQUE, "hunter2-db", "aws-secret-1", "gh-token-1", "pg-pass-1"):
        assert secret not in text
    env = {e["name"]: e["value"] for e in out["spec"]["containers"][0]["env"]}
    assert env["DB_PASSWORD_FILE"] == "/run/secrets/db"
    assert env["HOME"] == "/root" and env["KEYCLOAK_URL"] == "https://sso"
    assert out["spec"]["containers"][0]["args"][:3] == ["--token", REDACTED, "--verbose"]
    assert pod["spec"]["containers"][0]["env"][0]["value"] == "hunter2-db"  # input untouched


def test_hostile_secret_json_held_in_a_string_is_redacted_as_a_record() -> None:
    applied = '{"kind":"Pod","spec":{"containers":[{"env":[{"name":"API_KEY","value":"k-123"}]}]}}'
    event = {"metadata": {"annotations": {"note": applied, "x-api-key": "k-456"}}}
    text = repr(redact(event))
    assert "k-123" not in text and "k-456" not in text
    assert "API_KEY" in text


def test_hostile_secret_names() -> None:
    for name in ("DB_PASSWORD", "API_KEY", "apiKey", "SLACK_TOKEN", "client-secret", "PGPASSWORD"):
        assert secret_name(name), name
    for name in ("HOME", "KEYCLOAK_URL", "SECRET_NAME", "TOKEN_FILE", "MONKEY", "PATH"):
        assert not secret_name(name), name


def test_hostile_secret_kubeconfig_record_fields() -> None:
    config = {
        "users": [
            {
                "name": "admin",
                "user": {
                    "token": OPAQUE,
                    "client-key-data": "LS0tLS1CRUdJTiBSU0E=",
                    "client-certificate-data": "LS0tLS1DRVJU",
                    "password": "hunter2",
                },
            }
        ]
    }
    text = repr(redact(config))
    for secret in (OPAQUE, "LS0tLS1CRUdJTiBSU0E=", "LS0tLS1DRVJU", "hunter2"):
        assert secret not in text
    assert "admin" in text
