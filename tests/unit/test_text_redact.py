from __future__ import annotations

from ktriage.core.redact import REDACTED, redact, redact_text
from ktriage.core.text import clip, printable


def test_printable_escapes_control_and_ansi() -> None:
    hostile = "pod\x1b]52;c;ZXZpbA==\x07name\x1b[2J\r\n\x00\u202etxt"
    shown = printable(hostile)
    assert "\x1b" not in shown and "\x07" not in shown and "\x00" not in shown
    assert "\u202e" not in shown
    assert shown == "pod\\x1b]52;c;ZXZpbA==\\x07name\\x1b[2J\\r\\n\\x00\\u202etxt"


def test_printable_keeps_newlines_when_asked_and_escapes_tabs() -> None:
    # A raw tab moves the cursor past a pane's border: it is shown as \t.
    assert printable("a\tb\nc\x1b", keep_newlines=True) == "a\\tb\nc\\x1b"


def test_clip() -> None:
    assert clip("abcdef", 4) == "abc…"
    assert clip("abc", 4) == "abc"


def test_secret_data_is_redacted_everywhere() -> None:
    event = {
        "requestObject": {
            "kind": "Secret",
            "data": {"password": "aHVudGVyMg=="},
            "stringData": {"token": "plain"},
            "metadata": {"name": "db"},
        },
        "responseObject": {
            "kind": "SecretList",
            "items": [{"kind": "Secret", "data": {"k": "dg=="}, "metadata": {"name": "x"}}],
        },
    }
    out = redact(event)
    assert out["requestObject"]["data"] == {"password": REDACTED}
    assert out["requestObject"]["stringData"] == {"token": REDACTED}
    assert out["requestObject"]["metadata"]["name"] == "db"
    assert out["responseObject"]["items"][0]["data"] == {"k": REDACTED}
    assert "aHVudGVyMg==" not in repr(out)
    # The input is not changed.
    assert event["requestObject"]["data"]["password"] == "aHVudGVyMg=="


def test_token_request_headers_and_bearer_text() -> None:
    tr = {"kind": "TokenRequest", "status": {"token": "eyJhbGciOi.abc", "expirationTimestamp": "x"}}
    assert redact(tr)["status"] == {"token": REDACTED, "expirationTimestamp": "x"}
    headers = {"Authorization": "Bearer abcdefghijkl", "Accept": "json"}
    assert redact(headers) == {"Authorization": REDACTED, "Accept": "json"}
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJlLXNpZ24"
    text = f"curl -H 'Authorization: Bearer {jwt}' https://k8s; token {jwt}"
    cleaned = redact_text(text)
    assert jwt not in cleaned
    assert cleaned.count(REDACTED) >= 2
    assert redact_text("curl -H Authorization:Basic dXNlcjpwYXNzd29yZA== x").count("dXNl") == 0


def test_secrets_without_a_kind_are_recognised() -> None:
    listed = {
        "kind": "SecretList",
        "items": [{"type": "Opaque", "data": {"dbpass": "aHVudGVyMg=="}, "metadata": {}}],
    }
    assert "aHVudGVyMg==" not in repr(redact(listed))
    patch_event = {
        "objectRef": {"resource": "secrets", "name": "db"},
        "requestObject": {"data": {"dbpass": "aHVudGVyMg=="}},
        "responseObject": {"metadata": {"name": "db"}, "type": "Opaque", "data": {"k": "dg=="}},
    }
    out = redact(patch_event)
    assert out["requestObject"]["data"] == {"dbpass": REDACTED}
    assert out["responseObject"]["data"] == {"k": REDACTED}
    assert out["objectRef"] == {"resource": "secrets", "name": "db"}


def test_last_applied_secret_and_kubeconfig_credentials() -> None:
    applied = '{"apiVersion":"v1","kind":"Secret","data":{"pw":"aHVudGVyMg=="}}'
    secret = {
        "kind": "Secret",
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": applied}},
        "data": {"pw": "aHVudGVyMg=="},
    }
    assert "aHVudGVyMg==" not in repr(redact(secret))
    user = {"auth-provider": {"config": {"access-token": "ya29.abc", "client-secret": "s3cr3t"}}}
    assert "ya29" not in repr(redact(user)) and "s3cr3t" not in repr(redact(user))


def test_summaries_never_carry_credentials() -> None:
    from ktriage.core.parse import plain

    text = plain("curl -H 'Authorization: Bearer abcdefgh12345678' http://api")
    assert "abcdefgh12345678" not in text
    assert plain("ls -la /tmp") == "ls -la /tmp"
