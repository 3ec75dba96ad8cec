"""The screenshots in docs/operations.md are the browser tests' own: each one the docs show exists in
docs/images and is a file a browser test saves (so a rerun of the tests can refresh it)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_screenshot_in_the_operations_doc_is_made_by_a_browser_test() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text()
    shown = re.findall(r"!\[[^\]]*\]\(images/([a-z0-9-]+\.png)\)", doc)
    saved = set()
    for test in (ROOT / "tests" / "web").glob("test_*_browser.py"):
        saved |= set(re.findall(r'shots / "([a-z0-9-]+\.png)"', test.read_text()))
    assert len(shown) >= 6
    for name in shown:
        assert name in saved, name
        assert (ROOT / "docs" / "images" / name).stat().st_size > 10_000, name
