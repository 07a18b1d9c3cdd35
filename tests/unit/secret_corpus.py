"""Secrets as they turn up in records an attacker controls: each with the part that
must never reach an output. Shared by the redaction tests of every exit."""

from __future__ import annotations

JWT = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ"
    ".eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6a3ViZS1zeXN0ZW06ZGVmYXVsdCJ9"
    ".c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
)
OPAQUE = "Zq8vR2mKx7Lp4TnW"  # an opaque credential: mixed case and digits

# (class of secret, text holding it, what must not be shown)
CORPUS: tuple[tuple[str, str, str], ...] = (
    ("jwt", f"token {JWT}", JWT),
    ("jwt_in_uri", f"/api/v1/pods?token={JWT}&watch=1", JWT),
    ("bearer", f"curl -H 'Authorization: Bearer {OPAQUE}' https://k8s", OPAQUE),
    ("bearer_bare", f"sent Bearer {OPAQUE} upstream", OPAQUE),
    ("basic", "curl -H Authorization:Basic dXNlcjpodW50ZXIy x", "dXNlcjpodW50ZXIy"),
    ("basic_bare", "Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy"),
    (
        "bearer_urlencoded",
        f"command=curl&command=-H&command=Authorization%3A%20Bearer%20{OPAQUE}",
        OPAQUE,
    ),
    ("bearer_plus", f"command=curl+-H+Authorization%3A+Bearer+{OPAQUE}", OPAQUE),
    ("bearer_pct20", f"h=Bearer%20{OPAQUE}", OPAQUE),
    ("token_param", f"GET /login?access_token={OPAQUE}&next=/", OPAQUE),
    ("password_param", f"connect?user=bob&password={OPAQUE}", OPAQUE),
    ("passwd_param", f"passwd={OPAQUE}", OPAQUE),
    ("secret_param", f"secret={OPAQUE}", OPAQUE),
    ("api_key_param", f"api_key={OPAQUE}", OPAQUE),
    ("client_secret_param", f"client_secret={OPAQUE}&grant_type=x", OPAQUE),
    ("token_flag_eq", f"kubectl --token={OPAQUE} get secrets", OPAQUE),
    ("token_flag_space", f"kubectl --token {OPAQUE} get secrets", OPAQUE),
    ("password_flag", f"mysql --password {OPAQUE} -h db", OPAQUE),
    ("token_flag_exec_uri", f"command=kubectl&command=--token&command={OPAQUE}&stdin=true", OPAQUE),
    ("curl_user", f"curl -u admin:{OPAQUE} https://x", OPAQUE),
    ("curl_user_attached", f"curl -uadmin:{OPAQUE} https://x", OPAQUE),
    ("url_userinfo", f"git clone https://bob:{OPAQUE}@github.com/x/y", OPAQUE),
    ("url_userinfo_encoded", f"u=https%3A%2F%2Fbob%3A{OPAQUE}%40host", OPAQUE),
    ("x_auth_token", f"X-Auth-Token: {OPAQUE}", OPAQUE),
    ("x_api_key", f"X-Api-Key: {OPAQUE}", OPAQUE),
    ("cookie", f"Cookie: session={OPAQUE}; theme=dark", OPAQUE),
    ("kubeconfig_token", f"users: - name: a user: token: {OPAQUE}", OPAQUE),
    (
        "kubeconfig_key_data",
        "client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVk=",
        "LS0tLS1CRUdJ",
    ),
    ("kubeconfig_cert_json", '{"client-certificate-data":"LS0tLS1CRUdJTiBDRVJU"}', "LS0tLS1CRUdJ"),
    ("kubeconfig_password", f"password: {OPAQUE}", OPAQUE),
    ("escaped_json", f'{{\\"token\\":\\"{OPAQUE}\\"}}', OPAQUE),
    ("env_in_command", f"env DB_PASSWORD={OPAQUE} ./migrate", OPAQUE),
    ("quoted_password", f'password="{OPAQUE} with spaces"', OPAQUE),
    ("aws_access_key", "key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_session_key", "ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A"),
    ("aws_secret_env", f"AWS_SECRET_ACCESS_KEY={OPAQUE}", OPAQUE),
    ("github_pat", "ghp_0123456789abcdefghijABCDEFGHIJ0123", "ghp_0123456789abcdefghij"),
    ("github_oauth", "gho_0123456789abcdefghijABCDEFGHIJ0123", "gho_0123456789abcdefghij"),
    ("github_server", "ghs_0123456789abcdefghijABCDEFGHIJ0123", "ghs_0123456789abcdefghij"),
    (
        "github_fine_grained",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
        "11ABCDEFG0123456789",
    ),
    ("gitlab", "glpat-abcdefghij0123456789", "glpat-abcdefghij0123456789"),
    ("slack", "xoxb-1234567890-abcdefghijKLMN", "xoxb-1234567890-abcdefghijKLMN"),
    ("google_api_key", "AIzaSyA1234567890abcdefghijklmnopqrstu", "AIzaSyA1234567890abcdefghij"),
    ("stripe", "sk_live_abcdefghijklmnop0123", "sk_live_abcdefghijklmnop0123"),
    ("npm", "npm_abcdefghijklmnopqrstuvwxyz0123456789", "npm_abcdefghijklmnopqrstuvwxyz"),
    (
        "private_key",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1234\n-----END RSA PRIVATE KEY-----",
        "MIIEpAIBAAKCAQEA1234",
    ),
    ("private_key_cut", "-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXk", "b3BlbnNzaC1rZXk"),
    # Found by a red-team review of event summaries.
    ("url_userinfo_long_user", f"https://{'u' * 130}:{OPAQUE}@h/", OPAQUE),
    ("jwt_glued_underscore", f"x_{JWT}", JWT),
    ("jwt_glued_letter", f"auth{JWT} sent", JWT),
    ("password_escaped_quote", f'{{"password":"ab\\"{OPAQUE}"}}', OPAQUE),
    ("token_double_urlencoded", f"q=token%253D{OPAQUE}&x=1", OPAQUE),
    ("mysql_attached_p", f"mysql -u root -h db -p{OPAQUE} shop", OPAQUE),
    ("mysql_exec_uri", f"command=mysql&command=-uroot&command=-p{OPAQUE}", OPAQUE),
    ("sshpass", f"sshpass -p {OPAQUE} ssh root@db", OPAQUE),
    ("redis_cli_auth", f"redis-cli -h cache -a {OPAQUE} ping", OPAQUE),
    ("curl_cookie_b", f'curl -s -b "session={OPAQUE}; theme=dark" https://x', OPAQUE),
    ("curl_cookie_long", f"curl --cookie session={OPAQUE} https://x", OPAQUE),
    ("apikey_space", f"apikey {OPAQUE}", OPAQUE),
    ("api_key_header", f"api-key: {OPAQUE}", OPAQUE),
    ("privatekey_param", f"PRIVATEKEY={OPAQUE}", OPAQUE),
)

# Ordinary text that must stay readable as it is.
ORDINARY = (
    "token-theft detected in shop/web-1",
    "cat /root/.ssh/authorized_keys",
    "kubectl --token-file=/var/run/secrets/token get pods",
    "Basic authentication failed for bob",
    "automountServiceAccountToken: false",
    "docker run -u 1000:1000 busybox",
    "GET /api/v1/namespaces/shop/secrets/db-creds",
    "list secrets in kube-system",
    "secretName: db-creds",
    "ps -ux",
    "https://example.com/path",
    "passed all checks; 3 tokens left; signal 9; monkey key",
    "mysql -p",
    "mysql -p -h db shop",
    "ls -a /tmp",
    "redis-cli -a",
    "git checkout -b feature",
    "apikey rotation scheduled",
    "curl -b",
)
