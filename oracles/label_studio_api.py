"""Label Studio's HTTP API through the standard library: the token, its authentication, and one line per failure.

Two kinds of token are accepted, told apart by their form:

- a personal access token (Account & Settings -> Personal Access Token; POST /api/token/ for a logged-in
  user): a JWT refresh token, three base64url parts starting with "eyJ". It is exchanged for an access
  token (POST /api/token/refresh/), which is sent as `Authorization: Bearer <access>`. Access tokens live
  minutes, so a 401 exchanges it once more before the call is tried again.
- a legacy token (Account & Settings -> Legacy Token: 40 hexadecimal characters), sent as
  `Authorization: Token <token>`. Label Studio accepts it only where the organisation enables legacy
  tokens (Organization -> API Tokens Settings).

The standard library is enough for these few JSON calls, and label-studio-sdk's pinned dependencies clash
with the project's. Every failure is a LabelStudioError whose one line names the problem and the fix; no
message holds the token.
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.error
import urllib.request
from typing import Any

from parseit import resolve_path

# The environment variable Label Studio's SDK reads the token from; used when no token file is given.
TOKEN_VARIABLE = "LABEL_STUDIO_API_KEY"
# Seconds one call may take (an export of a few dozen tasks takes well under one).
TIMEOUT = 60
# Characters of a server's error detail quoted in a message.
DETAIL_CHARS = 300
CREATE_TOKEN = ("create a personal access token (Account & Settings -> Personal Access Token, or POST /api/token/ as "
                "a logged-in user)")
PASS_TOKEN = f"pass it in a file (--label_studio_token_file FILE) or in {TOKEN_VARIABLE}"


class LabelStudioError(ValueError):
    """Label Studio cannot be used as asked; the message names the problem and the fix (exit code 2)."""


def read_token(token_file: str) -> str:
    """The API token: the content of token_file (relative: from the repository), or of LABEL_STUDIO_API_KEY when
    token_file is empty. Read once per call and kept in memory only."""
    if token_file:
        path = resolve_path(token_file)
        try:
            token = path.read_text().strip()
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not text"
            raise LabelStudioError(f"cannot read the Label Studio token file {path} ({reason}): pass "
                                   f"--label_studio_token_file with the file that holds the token, or {CREATE_TOKEN} "
                                   "and save it there") from None
        where = f"the token file {path}"
    else:
        token = os.environ.get(TOKEN_VARIABLE, "").strip()
        where = f"the environment variable {TOKEN_VARIABLE}"
    if not token:
        raise LabelStudioError(f"no Label Studio token in {where}: {CREATE_TOKEN} and {PASS_TOKEN}")
    if any(ch.isspace() or not ch.isprintable() for ch in token):
        raise LabelStudioError(f"{where} holds more than one token (spaces or several lines): keep the token only")
    return token


def is_personal_token(token: str) -> bool:
    """Whether a token is a personal access token (a JWT: header.payload.signature, the header JSON "eyJ...")."""
    parts = token.split(".")
    return len(parts) == 3 and all(parts) and token.startswith("eyJ")


class LabelStudio:
    """One Label Studio server, called with one token."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._personal = is_personal_token(token)
        self._access: str | None = None

    def call(self, method: str, path: str, body: Any = None, missing_ok: bool = False, fix: str = "") -> Any:
        """The JSON answer of an API call (None for a 404 when missing_ok, or no content)."""
        content = self.fetch(method, path, body, missing_ok, fix)
        if not content:
            return None
        try:
            return json.loads(content)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise LabelStudioError(f"{self.url} answered {method} {path.partition('?')[0]} with something other "
                                   "than JSON: pass --label_studio_url with the address of a Label Studio server"
                                   ) from None

    def fetch(self, method: str, path: str, body: Any = None, missing_ok: bool = False, fix: str = ""
              ) -> bytes | None:
        """The body of a successful call (None for a 404 when missing_ok); any other answer is one line, ending
        with `fix` when given."""
        status, content = self.send(method, path, body)
        if status == 404 and missing_ok:
            return None
        if status not in (200, 201, 204):
            raise LabelStudioError(f"Label Studio at {self.url} answered {method} {path.partition('?')[0]} with HTTP "
                                   f"{status} ({_detail(content)}): {fix or 'see the server log'}")
        return content

    def send(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        """Status and body of an authenticated call; a refused token is a LabelStudioError."""
        status, content = self._open(method, path, body, {"Authorization": self._authorization()})
        if status == 401 and self._personal:   # the access token expired: exchange the token again
            self._access = None
            status, content = self._open(method, path, body, {"Authorization": self._authorization()})
        if status == 401:
            kind = "personal access token" if self._personal else "legacy token"
            raise LabelStudioError(f"Label Studio at {self.url} refused the {kind} ({_detail(content)}): "
                                   + ("enable legacy tokens (Organization -> API Tokens Settings), or "
                                      if not self._personal else "") + f"{CREATE_TOKEN} and {PASS_TOKEN}")
        return status, content

    def _authorization(self) -> str:
        if not self._personal:
            return f"Token {self._token}"
        if self._access is None:
            status, content = self._open("POST", "/api/token/refresh/", {"refresh": self._token}, {})
            if status in (400, 401):
                raise LabelStudioError(f"Label Studio at {self.url} refused the personal access token "
                                       f"({_detail(content)}): it was revoked, or is another server's: "
                                       f"{CREATE_TOKEN} and {PASS_TOKEN}")
            try:
                self._access = str(json.loads(content)["access"]) if status == 200 else None
            except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
                self._access = None
            if self._access is None:
                raise LabelStudioError(f"Label Studio at {self.url} did not exchange the personal access token "
                                       f"(HTTP {status}: {_detail(content)}): check that --label_studio_url is a "
                                       "Label Studio server of version 1.20 or later, or use a legacy token")
        return f"Bearer {self._access}"

    def _open(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data, {"Content-Type": "application/json",
                                                                "Accept": "application/json", **headers},
                                         method=method)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (OSError, http.client.HTTPException) as error:   # refused, unknown host, timeout, cut connection
            reason = getattr(error, "reason", None) or error
            raise LabelStudioError(f"cannot reach Label Studio at {self.url} ({reason}): start it (bash "
                                   "dependencies/label_studio.sh start EXP_ROOT) or correct --label_studio_url"
                                   ) from None


def _detail(content: bytes) -> str:
    """What a server's error answer says: its validation errors or detail, else the start of its text."""
    try:
        answer = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        answer = None
    if isinstance(answer, dict):
        found = answer.get("validation_errors") or answer.get("detail") or answer
        text = found if isinstance(found, str) else json.dumps(found)
    else:
        text = content.decode("utf-8", "replace")
    return " ".join(text.split())[:DETAIL_CHARS] or "no detail"
