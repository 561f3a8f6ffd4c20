"""The Label Studio server that `bash .ci/run` starts, as the tests reach it: a logged-in session (the user a
person would be) and the annotations a person would draw.

dependencies/label_studio.sh starts the server and prints the variables read here; without them the tests
that need it skip, saying why.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import numpy as np
import pytest
from PIL import Image

from al.brush_rle import encode
from al.request import BRUSH_NAME, FOREGROUND, IMAGE_NAME
from data.folds import load_fold
from parseit import resolve_path

Response = tuple[int, str, bytes]


class Studio:
    """A logged-in session with a Label Studio server; the API is called with the session cookie."""

    def __init__(self, url: str, email: str, password: str) -> None:
        self.url = url.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.raw("GET", "/user/login/")
        form = {"email": email, "password": password, "csrfmiddlewaretoken": self._csrf()}
        self.raw("POST", "/user/login/", urllib.parse.urlencode(form).encode(),
                 {"Content-Type": "application/x-www-form-urlencoded"})
        status, _, content = self.raw("GET", "/api/current-user/whoami")
        assert status == 200 and json.loads(content)["email"] == email, f"cannot log in to {self.url} as {email}"

    def _csrf(self) -> str:
        return next(c.value for c in self.jar if c.name == "csrftoken")

    def raw(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
            ) -> Response:
        """Status, content type and body of a request to a path of the server."""
        headers = {"Referer": self.url + "/", **(headers or {})}
        if any(c.name == "csrftoken" for c in self.jar):
            headers["X-CSRFToken"] = self._csrf()
        request = urllib.request.Request(self.url + path, body, headers, method=method)
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Content-Type", ""), error.read()

    def api(self, method: str, path: str, body: Any = None, expected: int = 200) -> Any:
        """The JSON answer of an API call, which must have the expected status (None when it has no body)."""
        data = None if body is None else json.dumps(body).encode()
        status, _, content = self.raw(method, path, data, {"Content-Type": "application/json"})
        assert status == expected, f"{method} {path}: {status} {content[:500]!r}"
        return json.loads(content) if content else None


def connect() -> Studio:
    """The session with the running server; the test skips, saying why, when there is none."""
    if os.environ.get("LABEL_STUDIO_UNAVAILABLE"):
        pytest.skip(f"Label Studio could not be installed: {os.environ['LABEL_STUDIO_UNAVAILABLE']}")
    if not os.environ.get("LABEL_STUDIO_URL"):
        pytest.skip("Label Studio is not running: `bash .ci/run` starts it, or `bash dependencies/label_studio.sh "
                    "install && eval \"$(bash dependencies/label_studio.sh start DOCUMENT_ROOT)\"`")
    return Studio(os.environ["LABEL_STUDIO_URL"], os.environ["LABEL_STUDIO_EMAIL"],
                  os.environ["LABEL_STUDIO_PASSWORD"])


def true_mask(sample_id: str) -> np.ndarray:
    """The synthetic set's own mask of a training image, 0/1."""
    record = next(r for r in load_fold(resolve_path("folds"), "synthetic", 0, 0).train if r.id == sample_id)
    grey = np.asarray(Image.open(resolve_path("datasets/synthetic") / record.mask).convert("L"))
    return (grey > 127).astype(np.uint8)


def brush(mask: np.ndarray) -> list[dict]:
    """An annotation's result: the mask painted with the brush, as Label Studio stores it (RLE)."""
    return [{"from_name": BRUSH_NAME, "to_name": IMAGE_NAME, "type": "brushlabels", "original_width": mask.shape[1],
             "original_height": mask.shape[0], "image_rotation": 0,
             "value": {"format": "rle", "rle": encode(mask), "brushlabels": [FOREGROUND]}}]
