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

import functools
import re
from typing import Any

import orjson
from ahocorasick_rs import AhoCorasick

REDACTED = "<redacted>"

# ---- text ------------------------------------------------------------------------

# Name of a parameter, header or field whose value is a credential (matched where
# it ends: `DB_PASSWORD=`, `x-auth-token:`, `"client-key-data":`).
_NAME = (
    r"(?:authorization|password|passwd|passphrase|(?<![a-z])pass|(?<![a-z])pwd"
    r"|secret|token|credentials?|(?:api|private|master|secret|access|[_.-])key(?:[_.-]?data)?"
    r"|client[_-]certificate[_-]data|x-amz-signature|(?<![a-z])sig)"
)
# What joins a name to its value: `=`, `:`, JSON quotes (also escaped), URL-encoded
# (also twice: `%253D`).
# Every repetition below over alternatives is possessive (`++`, `*+`) and the
# alternatives never start alike: a long run of separators before a mismatch is
# read once, never tried in every split (tests/unit/test_hostile_redaction.py times
# each pattern on such runs).
_SEP = r"""\\?["']?(?:[ \t]*+[:=][ \t]*+|%(?:25)*+3[ad](?:%(?:25)*+20|\+)*+)\\?["']?"""
# An auth scheme before a credential is part of the value.
_SCHEME = r"(?:(?:bearer|basic|digest|negotiate|token|aws4-hmac-sha256)(?:[ \t]|%20|\+)++)?"
# A value: to the closing quote when quoted (an escaped quote inside a quoted JSON
# value does not end it), else to a space, quote or `&`.
_VALUE = (
    r"""(?:(?<!\\")(?<=")(?:[^"\\\r\n]|\\[^\r\n])*+|(?<=\\")[^"\\\r\n]*"""
    r"""|(?<=')[^'\\\r\n]*"""
    r"""|(?!(?:true|false|null)(?![^\s"'&\\]))[^\s"'&\\]+)"""
)
# Flags whose next word is a credential: `--token x`, `--db-password x`.
_FLAG = (
    r"""(?<![^\s"'=\[,])--?(?:[a-z0-9]+[_-])*?"""
    r"(?:token|password|passwd|pass|pwd|secret|credentials?|(?<=[_-])key)"
)
_FLAG_GAP = r"(?:[ \t]|%20|\+|&command=)++"
_CREDENTIAL_CHARS = r"[A-Za-z0-9._~+/=%-]"
# Between the words of a command line (also of an exec URI), and a word.
_WORD_GAP = r"(?:[ \t]|%20|\+|&command=)++"
_WORD = r"[^\s&+%]++"

# JWTs (header `{"` is always `eyJ`), also glued to what precedes them (`x_eyJ...`,
# `%3DeyJ...`): the run is entered at its start only, its first dot must exist (one
# scan), then the first `eyJ` with 5 characters to go starts it.
_JWT = (
    r"(?<![A-Za-z0-9_-])(?=[A-Za-z0-9_-]*+\.[A-Za-z0-9_-]{5})"
    r"([A-Za-z0-9_-]*?)eyJ[A-Za-z0-9_-]{5,}+\.[A-Za-z0-9_-]{5,}+\.[A-Za-z0-9_-]*+"
)

_COMMANDS = "|".join(
    (
        # Client passwords of database, ssh and redis tools: `mysql -u root -pSECRET`,
        # `sshpass -p SECRET`, `redis-cli -a SECRET` (up to 16 words between, also in
        # an exec URI's command= parameters).
        rf"((?<![a-z0-9])(?:mysql\w*|mariadb\w*)(?:{_WORD_GAP}(?!-p){_WORD}){{0,16}}+"
        rf"{_WORD_GAP}-p)(?![-\s]){_VALUE}",
        rf"((?<![a-z0-9])sshpass{_WORD_GAP}-p(?:{_WORD_GAP})?+)(?![-\s&]){_VALUE}",
        rf"((?<![a-z0-9])redis-cli(?:{_WORD_GAP}(?!-a\b){_WORD}){{0,16}}+"
        rf"{_WORD_GAP}-a{_WORD_GAP}(?:\\?[\"'])?)(?!-){_VALUE}",
        # Cookies given to curl: `curl -b "session=..."`, `--cookie x`.
        rf"((?<![a-z0-9])curl(?:{_WORD_GAP}(?!-b\b){_WORD}){{0,16}}+"
        rf"{_WORD_GAP}-b(?:{_WORD_GAP}|=)(?:\\?[\"'])?)(?!-){_VALUE}",
        rf"""((?<![^\s"'=\[,])--cookie(?:{_WORD_GAP}|=)(?:\\?["'])?)(?!-){_VALUE}""",
    )
)

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
    # scheme://user:pass@host (also URL-encoded). Neither part runs past a `/` (or
    # `%2f`), which every other start holds: each character is read at most twice.
    r"((?:://|%3a%2f%2f)[^\s/:@&%\"'\\]*+(?::|%3a))"
    r"(?:[^\s/@&%\"'\\]|%(?!40|2f))*+(?=@|%40)",
    # Bearer/Basic credentials anywhere, and `apikey X`; a plain word after them
    # ("Basic authentication", "apikey rotation") is no credential: it must hold a
    # digit, a capital after its first letter, or + / = %.
    r"((?<![a-z0-9])(?:bearer|basic|api[_-]?key)(?:[ \t]|%20|\+)++)"
    rf"(?-i:(?={_CREDENTIAL_CHARS}[a-z._~-]*[A-Z0-9+/=%])){_CREDENTIAL_CHARS}{{8,}}",
    _JWT,
    _COMMANDS,
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


@functools.cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """The secret patterns, compiled when first needed (about 5 ms; only text that
    trips `_TRIGGERS` needs them, and a replay of ordinary traffic may never): all
    but JWTs and command lines, JWTs, command lines. JWTs may start at any letter
    (glued to a word) and command lines are rare: passes of their own, only over
    text that holds `eyJ` or a command's name, spare the common text a wider
    first-character test and more alternatives."""
    secret = re.compile(
        f"(?=[{_FIRST_CHARS}])(?:{'|'.join(p for p in _PATTERNS if p not in (_JWT, _COMMANDS))})",
        re.IGNORECASE,
    )
    commands = re.compile(f"(?=[-cmrs])(?:{_COMMANDS})", re.IGNORECASE)
    return secret, re.compile(_JWT), commands


_COMMAND_WORDS = ("mysql", "mariadb", "sshpass", "redis-cli", "curl", "--cookie")

# Every match of a pattern above holds one of these (in the lower-cased text): the
# cheap test that spares most strings the regex. A name counts only when a
# separator follows it, as the patterns require ("passed", "tokens", "authorized_keys"
# and "signal" do not count). tests/unit/test_hostile_redaction.py checks that every
# entry of its corpus, and every match in a fuzzed mix, trips it.
_TRIGGER_ENTRIES = [
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
        "mysql",
        "mariadb",
        "sshpass",
        "redis-cli",
        "curl",
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
_TRIGGERS = re.compile("|".join(_TRIGGER_ENTRIES))


# A piece of every entry of _TRIGGERS (of its every match): text holding none of them
# cannot trip it. One Aho-Corasick pass looks for them all (_PIECES): the regex's
# search tries each entry at almost every place, and 30-odd `in` tests took six
# times as long as that pass (a report's thousands of alert outputs are mostly such
# text). A test checks that each entry holds one.
TRIGGER_PIECES = (
    "authorization",
    "pass",
    "pwd",
    "secret",
    "token",
    "credential",
    "key",
    "cookie",
    "sig",
    "bearer",
    "basic",
    "-u",
    "certificate",
    "mysql",
    "mariadb",
    "redis-cli",
    "curl",
    "://",
    "%3a%2f%2f",
    "eyj",
    "akia",
    "asia",
    "gh",
    "github_pat_",
    "glpat-",
    "xox",
    "aiza",
    "k_",
    "sk-",
    "npm_",
    "hf_",
    "sg.",
    "ya29.",
)


_PIECES = AhoCorasick(list(TRIGGER_PIECES))


def _trips(lowered: str) -> bool:
    """Whether lower-cased text trips _TRIGGERS."""
    try:
        found: object = _PIECES.find_matches_as_indexes(lowered)
    except UnicodeEncodeError:  # a lone surrogate (a Rust string holds none)
        found = any(piece in lowered for piece in TRIGGER_PIECES)
    return bool(found) and _TRIGGERS.search(lowered) is not None


def might_hold_secret(text: str) -> bool:
    """Whether `text` has anything redact_text could remove (false: it has none)."""
    return _trips(text.lower())


def _replace(match: re.Match[str]) -> str:
    keep = match.lastindex
    return (match.group(keep) if keep else "") + REDACTED


def redact_text(text: str) -> str:
    """`text` with every credential it holds replaced by `<redacted>`."""
    if not text:
        return text
    lowered = text.lower()
    if not _trips(lowered):
        return text
    secret, jwt, commands = _patterns()
    text = secret.sub(_replace, text)
    if any(word in lowered for word in _COMMAND_WORDS):
        text = commands.sub(_replace, text)
    return jwt.sub(_replace, text) if "eyJ" in text else text


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
# GITHUB_TOKEN, apiKey, PGPASSWORD, and run-together ones (PRIVATEKEY, MASTERKEY,
# DBPASS, SECRETKEY, tls-cert-key); a name for where one is (DB_PASSWORD_FILE,
# SECRET_NAME, KEY_FILE, KEYCLOAK_URL) is not, nor an identifier: an access key ID
# (AWS_ACCESS_KEY_ID, KEY_ID) names a key but does not let anyone use it. Words that
# merely end like one (MONKEY, BYPASS, COMPASS) stay readable.
_NAME_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
_SECRET_WORDS = frozenset(
    {"secret", "password", "passwd", "pwd", "pass", "token", "key", "apikey", "credentials"}
)
_SECRET_SUFFIXES = (
    "password",
    "passwd",
    "passphrase",
    "pass",
    "secret",
    "secrets",
    "token",
    "tokens",
    "key",
    "keys",
    "credential",
    "credentials",
)
# A secret only as the last word: PRIVATE (SSH_PRIVATE), not PRIVATE_REGISTRY_HOST.
_SECRET_LAST_WORDS = frozenset({"private"})
_ORDINARY_WORDS = frozenset(
    {
        "monkey",
        "donkey",
        "turkey",
        "hockey",
        "jockey",
        "whiskey",
        "hotkey",
        "hotkeys",
        "turnkey",
        "bypass",
        "compass",
        "surpass",
        "overpass",
        "underpass",
        "trespass",
    }
)
_WHERE_WORDS = frozenset(
    {"file", "path", "dir", "name", "ref", "id", "url", "arn", "uri", "ids", "names"}
)
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
    if words[-1] in _SECRET_LAST_WORDS:
        return True
    return any(
        w in _SECRET_WORDS or (w.endswith(_SECRET_SUFFIXES) and w not in _ORDINARY_WORDS)
        for w in words
    )


def _is_secret_key(key: str) -> bool:
    return key.lower() in _SECRET_KEYS


def _is_secret_object(obj: dict[str, Any]) -> bool:
    # Items of a SecretList and request bodies of patches carry no kind: a `type`
    # next to `data`/`stringData` is what only Secrets have.
    return obj.get("kind") == "Secret" or (
        isinstance(obj.get("type"), str) and ("data" in obj or "stringData" in obj)
    )


def _is_patch_op(value: dict[Any, Any]) -> bool:
    return isinstance(value.get("op"), str) and isinstance(value.get("path"), str)


def _patch_value_is_secret(path: str, in_secret: bool) -> bool:
    """Whether a JSON-patch operation on `path` sets a credential: a Secret's data,
    a field named like one, an env entry's value (its name is not in the patch)."""
    segments = [seg.replace("~1", "/").replace("~0", "~") for seg in path.split("/")[1:]]
    if not segments:
        return False
    if in_secret and segments[0] in ("data", "stringData"):
        return True
    last = segments[-1]
    if _is_secret_key(last) or secret_name(last):
        return True
    return len(segments) >= 3 and segments[-3] == "env" and last == "value"


def _redact_patch_op(op: dict[Any, Any], in_secret: bool) -> dict[Any, Any]:
    if "value" not in op or not _patch_value_is_secret(op["path"], in_secret):
        return {key: redact(item) for key, item in op.items()}
    item = op["value"]
    hidden = dict.fromkeys(item, REDACTED) if isinstance(item, dict) else REDACTED
    return {key: hidden if key == "value" else redact(other) for key, other in op.items()}


def _secret_payload(value: Any) -> Any:
    """A Secret (or a list of them, or a patch to one): every value replaced."""
    if isinstance(value, list):
        return [
            _redact_patch_op(item, in_secret=True)
            if isinstance(item, dict) and _is_patch_op(item)
            else _secret_payload(item)
            for item in value
        ]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
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
        if _is_patch_op(value):
            return _redact_patch_op(value, in_secret=False)
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
