"""Who may use the live server: access tokens, the origins a browser may call it from, and the client each
session counts against.

Tokens: `--token` (or TALKING_FACE_TOKEN) and/or `--token-file`, a file of `<user> <token>` lines, one per
user; it is read again whenever it changes, so deleting a line revokes that user's token at once. HTTP
clients send `Authorization: Bearer <token>`; a WebSocket sends the same header or, from a browser (which
cannot set WebSocket headers), "token" in its first message. Never in a URL, which access logs keep.
Tokens are compared in constant time and never logged.

Origins: browsers send `Origin` with WebSocket handshakes and POSTs. The page's own origin (the request's
Host) and `--allowed-origin`s pass, others get 403, so a page on another site cannot drive the server from
a visitor's browser. Without tokens the page's own origin counts only under a loopback name: a site whose
name is made to resolve to 127.0.0.1 (DNS rebinding) would otherwise be "its own origin". Clients that are
not browsers send no Origin.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.datastructures import Headers

from talking_face.serving.server.metrics import ServerMetrics

logger = logging.getLogger(__name__)

MIN_TOKEN_CHARS = 16
TOKEN_HINT = "make one with: python -c 'import secrets; print(secrets.token_urlsafe())'"
MISSING_TOKEN = (
    'an access token is needed: send it as Authorization: Bearer <token> (or, from a browser, as "token" in the first '
    "message)"
)
WRONG_TOKEN = "the access token is not valid (wrong or revoked)"
WRONG_ORIGIN = "requests from this origin are not allowed (the page's own origin and --allowed-origin are)"
BEARER = HTTPBearer(auto_error=False)


def is_loopback(host: str) -> bool:
    """Whether binding to `host` reaches only this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: whatever it resolves to


def read_token_file(path: Path) -> dict[bytes, str]:
    """token -> user from a file of `<user> <token>` lines (blank lines and # comments skipped)."""
    tokens = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 2:
            raise ValueError(f'{path}:{number}: expected "<user> <token>"')
        user, token = fields
        check_token(token, f"{path}:{number}")
        tokens[token.encode()] = user
    return tokens


def check_token(token: str, where: str) -> None:
    if len(token) < MIN_TOKEN_CHARS:
        raise ValueError(f"{where}: an access token needs at least {MIN_TOKEN_CHARS} characters ({TOKEN_HINT})")


class AccessTokens:
    """The valid tokens: one shared token and/or a token file's, the file re-read when it changes."""

    def __init__(self, token: str | None = None, token_file: Path | None = None):
        if token is not None:
            check_token(token, "--token")
        self.shared = token.encode() if token is not None else None
        self.path = Path(token_file) if token_file is not None else None
        self.version: tuple | None = None
        self.users: dict[bytes, str] = {}
        if self.path is not None:
            self._reload()

    @property
    def enabled(self) -> bool:
        return self.shared is not None or self.path is not None

    def _reload(self) -> None:
        """Reads the file when it changed since last time; a file gone or unreadable revokes all its tokens."""
        try:
            stat = os.stat(self.path)
            version = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            if version != self.version:
                self.users, self.version = read_token_file(self.path), version
        except (OSError, ValueError) as error:
            if self.version is None:
                raise ValueError(f"token file: {error}") from None  # at start: refuse to serve
            logger.error("token file unusable, its tokens refused until it is fixed: %s", error)
            self.users, self.version = {}, None

    def user(self, presented: str | None) -> str | None:
        """The token's user: its name in the token file, "" for the shared token, None when not valid."""
        if presented is None:
            return None
        if self.path is not None:
            self._reload()
        given, found = presented.encode(), None
        for token, user in [(self.shared, ""), *self.users.items()]:  # every one compared: no early exit
            if token is not None and hmac.compare_digest(token, given):
                found = user
        return found


class AccessGuard:
    """Tokens and origins for the app's routes, counting refusals in `metrics.access_denied`."""

    def __init__(self, tokens: AccessTokens, allowed_origins: tuple[str, ...], metrics: ServerMetrics):
        self.tokens, self.allowed_origins, self.metrics = tokens, frozenset(allowed_origins), metrics

    def origin_allowed(self, headers: Headers) -> bool:
        origin = headers.get("origin")
        allowed = origin is None or origin in self.allowed_origins or self._own_origin(origin, headers.get("host"))
        if not allowed:
            self.metrics.access_denied.labels("origin").inc()
        return allowed

    def _own_origin(self, origin: str, host: str | None) -> bool:
        parts = urlsplit(origin)
        return parts.netloc == host and (self.tokens.enabled or is_loopback(parts.hostname or ""))

    def client(self, presented: str | None, address: str) -> str | None:
        """Who a request counts as for the per-client session limit: its user in the token file, else its
        address (the shared token does not tell users apart); None when a token is needed and not valid."""
        if not self.tokens.enabled:
            return f"address {address}"
        user = self.tokens.user(presented)
        if user is None:
            self.metrics.access_denied.labels("no_token" if presented is None else "wrong_token").inc()
            return None
        return f"user {user}" if user else f"address {address}"

    def still_valid(self, presented: str | None) -> bool:
        """Whether a session admitted with `presented` may go on (its token not revoked since)."""
        return not self.tokens.enabled or self.tokens.user(presented) is not None

    def refusal(self, presented: str | None) -> str:
        return MISSING_TOKEN if presented is None else WRONG_TOKEN

    def http_client(
        self, request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(BEARER)
    ) -> str:
        """FastAPI dependency of the HTTP routes that need a token: the client, or 401."""
        presented = credentials.credentials if credentials is not None else None
        client = self.client(presented, request.client.host if request.client else "")
        if client is None:
            raise HTTPException(401, self.refusal(presented), headers={"WWW-Authenticate": "Bearer"})
        return client

    def http_origin(self, request: Request) -> None:
        """FastAPI dependency of the POST routes: 403 for a browser on another origin."""
        if not self.origin_allowed(request.headers):
            raise HTTPException(403, WRONG_ORIGIN)


def bearer_token(headers: Headers) -> str | None:
    """The token of an `Authorization: Bearer` header (a WebSocket handshake's), None without one."""
    scheme, token = get_authorization_scheme_param(headers.get("authorization"))
    return token if scheme.lower() == "bearer" and token else None
