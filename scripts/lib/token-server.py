#!/usr/bin/env python3
"""A small registry token server for pare's testbed (Docker's token authentication spec).

distribution (docker-registry 2.8) with `auth: token:` answers 401 with
`WWW-Authenticate: Bearer realm=...,service=...,scope=...`; the client then asks this server
for a token with HTTP basic credentials, and sends the token to the registry. The token is a
JWT signed RS256 with --key; the registry checks it against the certificate of that key
(`rootcertbundle`), the issuer and the service, and grants only the actions listed in its
`access` claim. Each user is granted a set of actions on every repository it asks for;
wrong credentials get 401, no credentials an anonymous token with no access (as Docker Hub).

Standard library only; signing is done by `openssl dgst -sha256 -sign`.

  token-server.py --listen 127.0.0.1:5558 --key token.key --cert token.crt \
      --tls-cert server.crt --tls-key server.key --issuer ISS --service SVC \
      --user NAME:PASSWORD:pull,push [--user ...]
"""

import argparse
import base64
import hashlib
import hmac
import http.server
import json
import ssl
import subprocess
import sys
import time
import urllib.parse
import uuid


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(spki_der: bytes) -> str:
    """The key id distribution derives from a public key (libtrust's KeyID)."""
    digest = hashlib.sha256(spki_der).digest()[:30]
    s = base64.b32encode(digest).decode().rstrip("=")
    return ":".join(s[i:i + 4] for i in range(0, len(s), 4))


def public_key_der(cert: str) -> bytes:
    pem = subprocess.run(["openssl", "x509", "-in", cert, "-pubkey", "-noout"],
                         check=True, capture_output=True).stdout
    return subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pem,
                          check=True, capture_output=True).stdout


class Issuer:
    def __init__(self, opts):
        self.key = opts.key
        self.issuer = opts.issuer
        self.service = opts.service
        self.kid = libtrust_key_id(public_key_der(opts.cert))
        self.users = {}
        for spec in opts.user:
            name, password, actions = spec.split(":", 2)
            self.users[name] = (password, set(a for a in actions.split(",") if a))

    def sign(self, claims: dict) -> str:
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        signing_input = (b64url(json.dumps(header).encode()) + "."
                         + b64url(json.dumps(claims).encode()))
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key],
                             input=signing_input.encode(), check=True,
                             capture_output=True).stdout
        return signing_input + "." + b64url(sig)

    def token(self, subject: str, granted: set, scopes: list) -> str:
        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) < 3:
                continue
            kind, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
            allowed = [a for a in actions if a in granted or "*" in granted]
            if allowed:
                access.append({"type": kind, "name": name, "actions": allowed})
        now = int(time.time())
        return self.sign({
            "iss": self.issuer, "sub": subject, "aud": self.service,
            "exp": now + 300, "nbf": now - 10, "iat": now,
            "jti": uuid.uuid4().hex, "access": access,
        })


def handler(issuer: Issuer):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):
            sys.stderr.write("token-server: " + (fmt % args) + "\n")

        def reply(self, code: int, body: dict):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if code == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="pare-test-token"')
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/token":
                return self.reply(404, {"errors": [{"code": "NOT_FOUND"}]})
            query = urllib.parse.parse_qs(url.query)
            if query.get("service", [issuer.service])[0] != issuer.service:
                return self.reply(400, {"errors": [{"code": "UNSUPPORTED_SERVICE"}]})
            subject, granted = "", set()
            auth = self.headers.get("Authorization", "")
            if auth:
                try:
                    scheme, value = auth.split(" ", 1)
                    name, password = base64.b64decode(value).decode().split(":", 1)
                except (ValueError, UnicodeDecodeError):
                    return self.reply(400, {"errors": [{"code": "BAD_AUTHORIZATION"}]})
                known = issuer.users.get(name)
                if scheme.lower() != "basic" or known is None \
                        or not hmac.compare_digest(known[0], password):
                    return self.reply(401, {"errors": [{"code": "UNAUTHORIZED",
                                                        "message": "wrong credentials"}]})
                subject, granted = name, known[1]
            token = issuer.token(subject, granted, query.get("scope", []))
            self.reply(200, {"token": token, "access_token": token, "expires_in": 300,
                             "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--issuer", required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--user", action="append", default=[])
    opts = p.parse_args()
    host, port = opts.listen.rsplit(":", 1)
    server = http.server.ThreadingHTTPServer((host, int(port)), handler(Issuer(opts)))
    if opts.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(opts.tls_cert, opts.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
