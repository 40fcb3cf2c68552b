"""Headless Chromium for the report tests (tools/test.sh installs it; the tests skip with a reason without it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def render_dom(browser: str, page: Path, profile: Path) -> str:
    """The DOM of a page after it loaded (headless, offline: the report must need nothing from the network)."""
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               "--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def images_loaded(dom: str) -> tuple[int, int]:
    """(images in the page, images decoded), as the report's script records them on <body>."""
    images = int(dom.split('data-images="')[1].split('"')[0])
    loaded = int(dom.split('data-images-loaded="')[1].split('"')[0])
    return images, loaded
