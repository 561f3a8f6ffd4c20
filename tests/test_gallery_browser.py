"""The request's index.html opened in a real headless Chromium (Debian's package): every picture loads."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from al.request import PickedImage, RankedCandidate, write_request

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags for a closed network and no screen (without the background-networking ones Chromium keeps
# trying to reach Google's hosts).
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000")
# Run inside the page after it loaded: which <img> elements the browser failed to decode.
CHECK = """<script>window.addEventListener("load", () => {
  const images = [...document.images];
  document.body.setAttribute("data-check", JSON.stringify({n: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt)}));
});</script>"""

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (bash .ci/run installs "
                                                         "it: apt-get install chromium)")


def _browser_check(page: Path, tmp_path: Path) -> dict:
    probe = page.with_name(page.stem + "_probe.html")
    probe.write_text(page.read_text() + CHECK)
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                          probe.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    probe.unlink()
    found = re.search(r'data-check="([^"]*)"', dom)
    assert found, "the page's check did not run"
    return json.loads(html.unescape(found.group(1)))


def _request(folder: Path) -> None:
    rng = np.random.default_rng(0)
    picked = []
    for k, (h, w) in enumerate([(40, 60), (300, 500), (64, 64)]):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        probability = rng.random((h, w))
        picked.append(PickedImage(f"img_{k}", image, None if k == 2 else (probability > 0.5).astype(np.uint8),
                                  None if k == 2 else probability,
                                  probability > 0.8 if k == 1 else None))
    candidates = [RankedCandidate(p.id, f"images/{p.id}.jpg", "lesion", 1.0 - 0.1 * k, True)
                  for k, p in enumerate(picked)]
    candidates.append(RankedCandidate("img_9", "images/img_9.jpg", "lesion", 0.05, False))
    write_request(folder, "round 3 picks", "Entropy", candidates, picked, folder.parent)


def test_every_picture_of_the_gallery_loads_in_chromium(tmp_path: Path) -> None:
    folder = tmp_path / "to_annotate"
    _request(folder)
    result = _browser_check(folder / "index.html", tmp_path)
    # img_0: image, prediction, heat-map; img_1: also its regions; img_2 (no model): the image only.
    assert result == {"n": 8, "broken": []}
    page = (folder / "index.html").read_text()
    for link in re.findall(r'href="([^"]+)"', page):
        assert (folder / link).is_file()


def test_the_browser_check_sees_a_broken_picture(tmp_path: Path) -> None:
    folder = tmp_path / "to_annotate"
    _request(folder)
    page = (folder / "index.html").read_text()
    start = page.index('src="data:image/png;base64,') + len('src="data:image/png;base64,')
    (folder / "index.html").write_text(page[:start] + "AAAA" + page[start + 40:])
    result = _browser_check(folder / "index.html", tmp_path)
    assert result["n"] == 8 and result["broken"] == ["img_0 image"]
