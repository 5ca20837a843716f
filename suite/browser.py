"""Headless Chromium for the browser tests, driven by Playwright: which Chromium, found one way.

`chromium_executable` is the one lookup every browser test uses, the same on a laptop, on
GitHub's amd64 and arm64 runners and on a machine without internet access. In order:

1. `$KUBE_ALIVE_CHROMIUM`, when set: a path or a command on PATH, taken as given.
2. Playwright's own Chromium, when the `playwright` package is importable and its browser is
   installed (`python -m playwright install --with-deps chromium`; the runners do this, since
   GitHub's arm64 runner has no Chromium at all and the amd64 one only Google Chrome).
3. The system's: Debian's `/usr/bin/chromium`, else `chromium`, `chromium-browser` or
   `google-chrome` on PATH. Ubuntu's snap shim is passed over: its `chromium-browser` is a script
   that only runs (or asks you to install) the snap, whose confinement Playwright cannot drive.

A machine that cannot download Playwright's browser builds (like the one this project is proven
on) uses step 3, so nothing here ever downloads a browser.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Protocol

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

#: An explicit path (or command) that wins over the lookup.
OVERRIDE_ENV = "KUBE_ALIVE_CHROMIUM"
#: Debian's package (`apt-get install chromium`) puts its launcher here, on PATH or not.
DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
#: Other names a system Chromium goes by, looked up on PATH after Debian's.
SYSTEM_NAMES = ("chromium", "chromium-browser", "google-chrome")
#: What a person runs when there is none: one line, both ways to get one.
INSTALL_HINT = (
    "no Chromium found: run `python -m playwright install --with-deps chromium` "
    "(Playwright's own) or `apt-get install chromium` (Debian)"
)
#: A launcher script is judged by its head; the snap shim says "snap" in its first few lines.
_SCRIPT_HEAD_BYTES = 4096
#: "snap" as a word (`/snap/bin/chromium`, `snap install chromium`), not inside "snapshot".
_SNAP_WORD = re.compile(rb"\bsnap\b", re.IGNORECASE)


class ChromiumNotFound(LookupError):
    """No usable Chromium; the message is one line that says how to get one."""


class _BrowserType(Protocol):
    @property
    def executable_path(self) -> str: ...


class PlaywrightLike(Protocol):
    """The part of a started `playwright.sync_api.Playwright` the lookup reads."""

    @property
    def chromium(self) -> _BrowserType: ...


def chromium_executable(playwright: PlaywrightLike | None = None) -> str:
    """The Chromium the browser tests launch (see the module's docstring for the order).

    `playwright`: an already started Playwright, so its driver is not started a second time;
    without it, one is started (and stopped) only to read where its Chromium would be. Nothing
    is launched. Raises `ChromiumNotFound` with a one-line message naming the install commands.
    """
    override = os.environ.get(OVERRIDE_ENV, "")
    if override:
        found = override if _is_executable(Path(override)) else shutil.which(override)
        if not found:
            raise ChromiumNotFound(f"{OVERRIDE_ENV}={override}: no such executable file or command")
        return found
    found = _playwright_chromium(playwright) or _system_chromium()
    if not found:
        raise ChromiumNotFound(INSTALL_HINT)
    return found


def _playwright_chromium(playwright: PlaywrightLike | None) -> str | None:
    """Playwright's own Chromium when it is installed. Playwright names the path whether or not
    the browser was downloaded, so the file decides."""
    if playwright is not None:
        path = playwright.chromium.executable_path
    else:
        try:
            from playwright.sync_api import Error, sync_playwright
        except ImportError:
            return None
        try:
            started = sync_playwright().start()
        except (Error, OSError):
            # A driver that cannot start cannot launch a browser either: fall back to the system's.
            return None
        try:
            path = started.chromium.executable_path
        finally:
            started.stop()
    return path if path and _is_executable(Path(path)) else None


def _system_chromium() -> str | None:
    """Debian's Chromium, else a Chromium or Chrome on PATH, never Ubuntu's snap shim."""
    candidates: list[str | None] = [str(DEBIAN_CHROMIUM)]
    candidates += [shutil.which(name) for name in SYSTEM_NAMES]
    for candidate in candidates:
        if candidate and _is_executable(Path(candidate)) and not is_snap_shim(Path(candidate)):
            return candidate
    return None


def is_snap_shim(path: Path) -> bool:
    """Whether `path` is Ubuntu's snap Chromium or the script that stands in for it.

    Ubuntu's `chromium-browser` (and `chromium`) packages install a shell script that execs
    /snap/bin/chromium or tells you to `snap install chromium`; /snap/bin/chromium itself is a
    link to /usr/bin/snap. Debian's /usr/bin/chromium is a script too, but never mentions snap.
    """
    resolved = path.resolve()
    if resolved.parts[:2] == ("/", "snap") or resolved.name == "snap":
        return True
    try:
        with path.open("rb") as file:
            head = file.read(_SCRIPT_HEAD_BYTES)
    except OSError:
        return False
    return head.startswith(b"#!") and _SNAP_WORD.search(head) is not None


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
