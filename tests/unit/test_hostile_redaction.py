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
    _TRIGGER_ENTRIES,
    _TRIGGERS,
    REDACTED,
    TRIGGER_PIECES,
    _trips,
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


def _leading_literal(entry: str) -> str:
    """The text every match of a trigger entry begins with: its characters up to the
    first regex syntax (a character a quantifier follows is optional, so left out)."""
    out: list[str] = []
    i = 0
    while i < len(entry):
        ch = entry[i]
        if ch == "\\" and i + 1 < len(entry) and entry[i + 1] in ".-_":
            out.append(entry[i + 1])
            i += 2
            continue
        if ch in "([{|^$.":
            break
        if ch in "?*":
            out.pop()
            break
        out.append(ch)
        i += 1
    return "".join(out)


@pytest.mark.parametrize("entry", _TRIGGER_ENTRIES)
def test_every_trigger_entry_begins_with_a_piece_of_the_literal_check(entry: str) -> None:
    # The literal check lets the regex run only on text holding one of its pieces:
    # an entry whose every match does not hold one would never be looked for.
    literal = _leading_literal(entry)
    assert literal, entry
    assert any(piece in literal for piece in TRIGGER_PIECES), (entry, literal)


def test_the_literal_check_answers_as_the_trigger_regex() -> None:
    pieces = [t for _, t, _ in CORPUS] + list(ORDINARY) + list(TRIGGER_PIECES)
    fragments = [p[i : i + n] for p in pieces for i in range(0, len(p), 3) for n in (2, 4, 9)]
    rng = random.Random(20261204)
    tripped = 0
    for _ in range(20_000):
        text = "".join(rng.choice(fragments) for _ in range(rng.randint(1, 6))).lower()
        expected = _TRIGGERS.search(text) is not None
        assert _trips(text) == expected, text
        tripped += expected
    assert 1_000 < tripped < 19_000  # both answers were asked for


@pytest.mark.parametrize("odd", ["\udcff", "\ud800\udc00", "\x00", "\u202e"])
def test_hostile_odd_characters_do_not_hide_a_secret(odd: str) -> None:
    """Text the decoders can hand over with a lone surrogate (or other odd code
    points) beside a secret: the first check still finds the secret's piece, and the
    secret is redacted; such text without one is left as it is."""
    secret = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlMTIzNDU2"
    text = f"{odd}Authorization: Bearer {secret} {odd}"
    assert _trips(text.lower())
    assert secret not in redact_text(text)
    plain = f"{odd} nothing to see here {odd}"
    assert not _trips(plain.lower())
    assert redact_text(plain) == plain


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


# Env names run together or cased any way; the second list names where a secret is,
# or identifies one (an access key ID alone lets nobody in), or only ends like one.
SECRET_ENV_NAMES = (
    "PRIVATEKEY",
    "MASTERKEY",
    "DBPASS",
    "PASSPHRASE",
    "SECRETKEY",
    "APIKEY",
    "ACCESSKEY",
    "masterKey",
    "tls-cert-key",
    "SIGNING_KEY",
    "REDIS_PASS",
    "SSH_PRIVATE",
    "GOOGLE_CREDENTIALS",
    "GITHUB_TOKENS",
)
READABLE_ENV_NAMES = (
    "KEY_FILE",
    "AWS_ACCESS_KEY_ID",
    "KEY_ID",
    "MONKEY",
    "KEYCLOAK_URL",
    "BYPASS_PROXY",
    "COMPASS_HOST",
    "PRIVATE_REGISTRY_HOST",
    "SECRETS_DIR",
    "HOTKEY",
)


def test_hostile_secret_run_together_env_names_are_redacted() -> None:
    env = [{"name": name, "value": f"v-{i}-{OPAQUE}"} for i, name in enumerate(SECRET_ENV_NAMES)]
    env += [{"name": name, "value": f"plain-{name}"} for name in READABLE_ENV_NAMES]
    out = redact({"kind": "Pod", "spec": {"containers": [{"name": "a", "env": env}]}})
    values = {e["name"]: e["value"] for e in out["spec"]["containers"][0]["env"]}
    for name in SECRET_ENV_NAMES:
        assert secret_name(name), name
        assert values[name] == REDACTED, name
    for name in READABLE_ENV_NAMES:
        assert not secret_name(name), name
        assert values[name] == f"plain-{name}", name


def _secret_patch_event(patch: list[dict[str, object]]) -> dict[str, object]:
    return {
        "kind": "Event",
        "verb": "patch",
        "objectRef": {"resource": "secrets", "namespace": "shop", "name": "db-creds"},
        "requestObject": patch,
    }


def test_hostile_secret_json_patch_of_a_secret_hides_its_data() -> None:
    event = _secret_patch_event(
        [
            {"op": "replace", "path": "/data/password", "value": "c2VjLWRhdGEtMQ=="},
            {"op": "add", "path": "/stringData/token", "value": "plain-string-data-2"},
            {"op": "add", "path": "/data", "value": {"user": "c2VjLWRhdGEtMw=="}},
            {"op": "test", "path": "/data/user", "value": "c2VjLWRhdGEtNA=="},
            {"op": "add", "path": "/metadata/labels/team", "value": "payments"},
        ]
    )
    out = redact(event)
    text = repr(out)
    for secret in ("c2VjLWRhdGEtMQ", "plain-string-data-2", "c2VjLWRhdGEtMw", "c2VjLWRhdGEtNA"):
        assert secret not in text
    assert out["requestObject"][2]["value"] == {"user": REDACTED}
    assert out["requestObject"][4]["value"] == "payments"  # not data: readable
    assert out["requestObject"][0]["path"] == "/data/password"  # where it went stays


def test_hostile_secret_json_patch_of_any_resource_hides_named_and_env_values() -> None:
    patch = [
        {"op": "replace", "path": "/spec/template/spec/containers/0/env/3/value", "value": "e-1"},
        {"op": "add", "path": "/metadata/annotations/api-token", "value": "t-2"},
        {"op": "add", "path": "/metadata/annotations/db~1password", "value": "p-3"},
        {
            "op": "add",
            "path": "/spec/containers/0/env/-",
            "value": {"name": "DBPASS", "value": "x4"},
        },
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "replace", "path": "/data/color", "value": "blue"},
    ]
    event = {"objectRef": {"resource": "deployments"}, "requestObject": patch}
    out = redact(event)["requestObject"]
    assert [op["value"] for op in out[:3]] == [REDACTED] * 3
    assert out[3]["value"] == {"name": "DBPASS", "value": REDACTED}
    assert out[4]["value"] == 3 and out[5]["value"] == "blue"


def test_hostile_secret_json_patch_in_the_detail_pane() -> None:
    from rich.style import Style

    from ktriage.ui.detail import DetailStyles, json_lines

    style = Style()
    styles = DetailStyles(label=style, muted=style, key=style, heading=style, severity={})
    event = _secret_patch_event(
        [{"op": "replace", "path": "/data/password", "value": "c2VjLWRldGFpbC1wYW5l"}]
    )
    shown_lines = "\n".join(line.value.plain for line in json_lines(event, styles))
    assert "c2VjLWRldGFpbC1wYW5l" not in shown_lines
    assert "/data/password" in shown_lines and REDACTED in shown_lines


AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
# Values that are no time, holding a credential across the 60th character (a cut
# first would leave too little of it for its pattern) or after a tab (a repr first
# makes it `\t`, which no pattern reads as a gap).
SKIP_DETAIL_VALUES = {
    "cut_across_a_key": "x" * 44 + " " + AWS_KEY,
    "tab_before_a_token": f"--token\t{OPAQUE}",
    "jwt_late": "y" * 50 + " " + JWT,
}


@pytest.mark.parametrize("value", SKIP_DETAIL_VALUES.values(), ids=list(SKIP_DETAIL_VALUES))
def test_hostile_secret_skip_details_redact_before_the_cut(value: str) -> None:
    import orjson

    from ktriage.core.parse import SkipRecord, falco, tetragon

    falco_line = orjson.dumps({"rule": "r", "priority": "Warning", "output": "o", "time": value})
    tetragon_line = orjson.dumps(
        {"process_exec": {"process": {"binary": "/bin/sh"}}, "node_name": "n", "time": value}
    )
    details = []
    for parse, build, line in (
        (falco.parse_falco, falco.build_event, falco_line),
        (tetragon.parse_tetragon, tetragon.build_event, tetragon_line),
    ):
        with pytest.raises(SkipRecord) as caught:
            build(parse(line), line, None)
        details.append(caught.value.skip.detail)
    for detail in details:
        assert "\t" not in detail
        for secret in (AWS_KEY, OPAQUE, JWT):
            for piece in (secret[:8], secret[-8:]):
                assert piece not in detail, detail
