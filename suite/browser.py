"""Headless Chromium for the browser tests: Debian's Chromium, driven by Playwright.

A test tool's own browser download cannot work on machines without internet access, so the
tests point Playwright at the system's Chromium (`KUBE_ALIVE_CHROMIUM` overrides the path).
"""

from __future__ import annotations

import os

#: Headless, and no background connections: the machine's network is closed, and Chromium's own
#: update, sync and QUIC probes would only be refused.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_executable() -> str:
    """Where the system's Chromium is (Debian's package: /usr/bin/chromium)."""
    return os.environ.get("KUBE_ALIVE_CHROMIUM", "/usr/bin/chromium")
