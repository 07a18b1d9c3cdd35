"""Redaction of secrets from everything ktriage displays or saves.

One family: `redact_text` for a string, `redact` for a decoded record (which
calls `redact_text` on every string in it). Every exit goes through them, most
through `core.text.shown`.

Text: JWTs; Bearer/Basic credentials and Authorization, Cookie, X-Auth-Token and
X-Api-Key headers, also URL-encoded; `token=`/`password=`/`secret=`/`api_key=`...
parameters and kubeconfig fields (`token: abc`, `client-key-data: LS0t...`, also
inside JSON text); `--token x` and `--password=x` flags; `curl -u user:pass`;
`scheme://user:pass@`; well-known token prefixes (AWS, GitHub, GitLab, Slack,
Google, Stripe, npm, Hugging Face, OpenAI/Anthropic, SendGrid); private key blocks.

Records: Secret `data`/`stringData` (also of Secret lists, patches and the
last-applied annotation), TokenRequest tokens, credential-named keys, env
entries whose name says secret, password, token or key, the value after a
credential flag in an argument list, and JSON held in a string.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

REDACTED = "<redacted>"

# ---- text ------------------------------------------------------------------------

# Name of a parameter, header or field whose value is a credential (matched where
# it ends: `DB_PASSWORD=`, `x-auth-token:`, `"client-key-data":`).
_NAME = (
    r"(?:authorization|password|passwd|passphrase|(?<![a-z])pass|(?<![a-z])pwd"
    r"|secret|token|credentials?|(?:api|[_.-])key(?:[_.-]?data)?"
    r"|client[_-]certificate[_-]data|x-amz-signature|(?<![a-z])sig)"
)
# What joins a name to its value: `=`, `:`, JSON quotes (also escaped), URL-encoded.
_SEP = r"""\\?["']?(?:[ \t]*[:=][ \t]*|%3[ad](?:%20|\+)*)\\?["']?"""
# An auth scheme before a credential is part of the value.
_SCHEME = r"(?:(?:bearer|basic|digest|negotiate|token|aws4-hmac-sha256)(?:[ \t]+|%20|\+)+)?"
# A value: to the closing quote when quoted, else to a space, quote or `&`.
_VALUE = (
    r"""(?:(?<=")[^"\\\r\n]*|(?<=')[^'\\\r\n]*"""
    r"""|(?!(?:true|false|null)(?![^\s"'&\\]))[^\s"'&\\]+)"""
)
# Flags whose next word is a credential: `--token x`, `--db-password x`.
_FLAG = (
    r"""(?<![^\s"'=\[,])--?(?:[a-z0-9]+[_-])*?"""
    r"(?:token|password|passwd|pass|pwd|secret|credentials?|(?<=[_-])key)"
)
_FLAG_GAP = r"(?:[ \t]+|%20|\+|&command=)+"
_CREDENTIAL_CHARS = r"[A-Za-z0-9._~+/=%-]"

_PATTERNS = (
    # Private key blocks, to their end (or, cut, to a quote or the end of the text:
    # base64 holds none, a JSON string ends at one).
    r"(-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY[ A-Z]{0,10}-----)(?!<redacted>)[\s\S]*?"
    r"(?:-----END[ A-Z0-9]{0,40}PRIVATE KEY[ A-Z]{0,10}-----|(?=[\"'])|\Z)",
    # Cookies: every `name=value; ...` pair.
    r"""((?<![a-z])(?:set-)?cookie\\?["']?(?:[ \t]*:[ \t]*|%3a(?:%20|\+)*)\\?["']?)"""
    r"""[^\s"'\\&;]+(?:;[ \t]*[^\s"'\\&;]+)*;?""",
    # name=value, name: value, "name":"value", name%3Dvalue.
    rf"({_NAME}{_SEP}){_SCHEME}{_VALUE}",
    # --token VALUE (in a command line, or in an exec URI's command= parameters).
    rf"""({_FLAG}{_FLAG_GAP}(?:\\?["'])?)(?!-){_VALUE}""",
    # curl -u user:pass, --user user:pass (a numeric uid:gid is not a password).
    r"""((?<![^\s"'=\[,])(?:-u|--user)(?:[ \t]+|%20|\+|&command=|=)?(?!-)"""
    r"""[^\s:"'&@/\\]+(?::|%3a))(?![0-9]+(?![^\s"'&]))[^\s"'&\\]+""",
    # scheme://user:pass@host (also URL-encoded).
    # (Bounded: a long run with no `@` is given up soon.)
    r"((?:://|%3a%2f%2f)[^\s/:@&%\"'\\]{0,128}(?::|%3a))[^\s/@&\"'\\]{0,128}?(?=@|%40)",
    # Bearer/Basic credentials anywhere; a plain word after them ("Basic
    # authentication") is no credential: it must hold a digit, a capital after its
    # first letter, or + / = %.
    r"((?<![a-z0-9])(?:bearer|basic)(?:[ \t]+|%20|\+)+)"
    rf"(?-i:(?={_CREDENTIAL_CHARS}[a-z._~-]*[A-Z0-9+/=%])){_CREDENTIAL_CHARS}{{8,}}",
    # JWTs (header `{"` is always `eyJ`), at the start of a word or after %XX.
    r"(?-i:eyJ)(?:(?<![A-Za-z0-9_-]eyJ)|(?<=%[0-9A-Fa-f]{2}eyJ))"
    r"[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
    # Well-known token prefixes.
    r"(?-i:(?:(?<![A-Za-z0-9])|(?<=%[0-9A-Fa-f]{2}))(?:"
    r"(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"
    r"|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
    r"|glpat-[A-Za-z0-9_-]{20,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"
    r"|AIza[0-9A-Za-z_-]{30,}"
    r"|[sr]k_(?:live|test)_[0-9A-Za-z]{16,}"
    r"|sk-(?:ant-|proj-)[A-Za-z0-9_-]{20,}|sk-[A-Za-z0-9]{40,}"
    r"|npm_[A-Za-z0-9]{36}|hf_[A-Za-z0-9]{30,}"
    r"|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"
    r"|ya29\.[0-9A-Za-z_-]{20,}"
    r"))",
)
# Every pattern starts with one of these characters (either case): a lookahead on
# them lets the regex engine pass over other positions at once.
_FIRST_CHARS = "-_.:%abceghknprstxy"
_SECRET_ANY = "|".join(_PATTERNS)
_SECRET = re.compile(f"(?=[{_FIRST_CHARS}])(?:{_SECRET_ANY})", re.IGNORECASE)

# Every match of a pattern above holds one of these (in the lower-cased text): the
# cheap test that spares most strings the regex. A name counts only when a
# separator follows it, as the patterns require ("passed", "tokens", "authorized_keys"
# and "signal" do not count). tests/unit/test_hostile_redaction.py checks that every
# entry of its corpus, and every match in a fuzzed mix, trips it.
_TRIGGERS = re.compile(
    "|".join(
        [
            *(
                name + r"[^a-z0-9]"
                for name in (
                    "authorization",
                    r"pass(?:word|wd|phrase)?",
                    "pwd",
                    "secret",
                    "token",
                    "credentials?",
                    "key",
                    "cookie",
                    "signature",
                    "sig",
                    "bearer",
                    "basic",
                )
            ),
            r"""-u(?<![^\s"'=\[,]-u)""",
            *(
                "certificate[_-]data",
                "--user",
                "://",
                "%3a%2f%2f",
                "eyj",
                "akia",
                "asia",
                "gh[pousr]_",
                "github_pat_",
                "glpat-",
                "xox[abprs]-",
                "aiza",
                "k_live_",
                "k_test_",
                "sk-",
                "npm_",
                "hf_",
                r"sg\.",
                r"ya29\.",
            ),
        ]
    )
)


def might_hold_secret(text: str) -> bool:
    """Whether `text` has anything redact_text could remove (false: it has none)."""
    return _TRIGGERS.search(text.lower()) is not None


def _replace(match: re.Match[str]) -> str:
    keep = match.lastindex
    return (match.group(keep) if keep else "") + REDACTED


def redact_text(text: str) -> str:
    """`text` with every credential it holds replaced by `<redacted>`."""
    if not text or _TRIGGERS.search(text.lower()) is None:
        return text
    return _SECRET.sub(_replace, text)


# ---- records ---------------------------------------------------------------------

# Keys whose values are credentials, wherever they appear (compared lower-case).
_SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "token",
        "bearertoken",
        "bearer_token",
        "password",
        "passwd",
        "passphrase",
        "client-key-data",
        "client-certificate-data",
        "client-key",
        "id-token",
        "idtoken",
        "id_token",
        "refresh-token",
        "refresh_token",
        "refreshtoken",
        "access_token",
        "access-token",
        "accesstoken",
        "secret",
        "client-secret",
        "client_secret",
        "clientsecret",
        "x-auth-token",
        "x-api-key",
        "cookie",
        "set-cookie",
        "apikey",
        "api-key",
        "api_key",
        "private-key",
        "private_key",
        "privatekey",
        "secret-key",
        "secret_key",
        "secretkey",
    }
)
# Env entry names that say what their value is: DB_PASSWORD, AWS_SECRET_ACCESS_KEY,
# GITHUB_TOKEN, apiKey, PGPASSWORD; a name for where one is (DB_PASSWORD_FILE,
# SECRET_NAME, KEY_ID) is not.
_NAME_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
_SECRET_WORDS = frozenset(
    {"secret", "password", "passwd", "pwd", "pass", "token", "key", "apikey", "credentials"}
)
_SECRET_SUFFIXES = ("password", "passwd", "secret", "token", "apikey")
_WHERE_WORDS = frozenset({"file", "path", "dir", "name", "ref", "id", "url", "arn", "uri"})
# Argument lists: the item after one of these is a credential.
_FLAG_ITEM = re.compile(
    r"(?i)--?(?:[a-z0-9]+[_-])*?(?:token|password|passwd|pass|pwd|secret|credentials?"
    r"|(?<=[_-])key)"
)
_USER_FLAGS = frozenset({"-u", "--user"})
# kubectl keeps the whole object it applied in this annotation: a Secret's data too.
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# JSON held in a string (annotations, messages) is read and redacted as a record.
_MAX_JSON_TEXT = 1 << 20


def secret_name(name: str) -> bool:
    """Whether an env variable (or similar) name says its value is a secret."""
    words = [w.lower() for w in _NAME_WORDS.findall(name)]
    if not words or words[-1] in _WHERE_WORDS:
        return False
    return any(w in _SECRET_WORDS or w.endswith(_SECRET_SUFFIXES) for w in words)


def _is_secret_key(key: str) -> bool:
    return key.lower() in _SECRET_KEYS


def _is_secret_object(obj: dict[str, Any]) -> bool:
    # Items of a SecretList and request bodies of patches carry no kind: a `type`
    # next to `data`/`stringData` is what only Secrets have.
    return obj.get("kind") == "Secret" or (
        isinstance(obj.get("type"), str) and ("data" in obj or "stringData" in obj)
    )


def _secret_payload(value: Any) -> Any:
    """A Secret (or a list of them, or a patch to one): every value replaced."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ("data", "stringData") and isinstance(item, dict):
                out[key] = dict.fromkeys(item, REDACTED)
            elif key == "items" and isinstance(item, list):
                out[key] = [_secret_payload(i) for i in item]
            else:
                out[key] = redact(item)
        return out
    return redact(value)


def _redact_string(text: str) -> str:
    head = text[:1]
    if (head == "{" or head == "[") and len(text) <= _MAX_JSON_TEXT and might_hold_secret(text):
        try:
            decoded = orjson.loads(text)
        except orjson.JSONDecodeError:
            return redact_text(text)
        cleaned = redact(decoded)
        return orjson.dumps(cleaned).decode() if cleaned != decoded else text
    return redact_text(text)


def _redact_list(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    after_flag = after_user = False
    for item in values:
        if isinstance(item, str):
            if after_flag and item and not item.startswith("-"):
                out.append(REDACTED)
            elif after_user and ":" in item and not item.startswith("-"):
                out.append(item.partition(":")[0] + ":" + REDACTED)
            else:
                out.append(_redact_string(item))
            after_flag = _FLAG_ITEM.fullmatch(item) is not None
            after_user = item in _USER_FLAGS
        else:
            out.append(redact(item))
            after_flag = after_user = False
    return out


def redact(value: Any) -> Any:
    """Return a copy of a decoded JSON value with every secret replaced."""
    if isinstance(value, dict):
        kind = value.get("kind")
        if isinstance(kind, str) and kind.startswith("Secret") and kind.endswith("List"):
            return _secret_payload(value)
        ref = value.get("objectRef")
        if isinstance(ref, dict) and ref.get("resource") == "secrets":
            # An audit event about Secrets: its bodies are Secrets or patches to them.
            return {
                key: _secret_payload(item)
                if key in ("requestObject", "responseObject")
                else redact(item)
                for key, item in value.items()
            }
        secret = _is_secret_object(value)
        # An env entry ({name: DB_PASSWORD, value: ...}), or a header given the same way.
        name = value.get("name")
        secret_value = isinstance(name, str) and "value" in value and secret_name(name)
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                out[key] = redact(item)
                continue
            if secret and key in ("data", "stringData") and isinstance(item, dict):
                out[key] = dict.fromkeys(item, REDACTED)
            elif key == _LAST_APPLIED and isinstance(item, str) and '"Secret"' in item:
                out[key] = REDACTED
            elif secret_value and key == "value" and isinstance(item, str) and item:
                out[key] = REDACTED
            elif _is_secret_key(key) and isinstance(item, str | bytes) and item:
                out[key] = REDACTED
            elif _is_secret_key(key) and isinstance(item, list):
                out[key] = [REDACTED for _ in item]
            elif key == "status" and kind == "TokenRequest" and isinstance(item, dict):
                out[key] = {k: (REDACTED if k == "token" else v) for k, v in item.items()}
            else:
                out[redact_text(key)] = redact(item)
        return out
    if isinstance(value, list):
        return _redact_list(value)
    if isinstance(value, str):
        return _redact_string(value)
    return value
