"""A report page as headless Chromium renders it: its section ids and its images' attributes
(each image with ``data-loaded``, which the page's one script sets once it has loaded)."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM = shutil.which("chromium")
MISSING = "headless check needs Debian's chromium (apt-get install chromium)"


def rendered(page: Path, scratch: Path) -> tuple[list[str], list[dict[str, str | None]]]:
    """The section ids and image attributes of ``page`` once Chromium has loaded it; ``scratch`` holds its profile."""
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={scratch / 'profile'}", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(scratch)},
    ).stdout
    parsed = _Elements()
    parsed.feed(dom)
    return parsed.section_ids, parsed.images


class _Elements(HTMLParser):
    """The ids of sections and the attributes of images in a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.section_ids: list[str] = []
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self.section_ids.append(dict(attrs).get("id") or "")
        elif tag == "img":
            self.images.append(dict(attrs))
