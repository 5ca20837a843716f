"""Which Chromium the browser tests launch: fake browsers in a temporary directory, none started."""

import sys
import types

import pytest

from suite import browser
from suite.browser import INSTALL_HINT, ChromiumNotFound, chromium_executable, is_snap_shim

#: Debian's /usr/bin/chromium is a shell script too (and "snapshot" is not "snap").
LAUNCHER = b"""#!/bin/sh
# Chromium launcher (keeps no snapshot)
exec /usr/lib/chromium/chromium "$@"
"""
ELF = b"\x7fELF\x02\x01\x01\x00"
#: Ubuntu's chromium-browser transitional package: a script standing in for the snap.
SNAP_SHIM = b"""#!/bin/sh
# Copyright 2019 Canonical Ltd.
if ! [ -x /snap/bin/chromium ]; then
    echo "Command '$0' requires the chromium snap to be installed." >&2
    echo "Please install it with:" >&2
    echo "snap install chromium" >&2
    exit 1
fi
exec /snap/bin/chromium "$@"
"""


def _executable(path, content=ELF, mode=0o755):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(mode)
    return path


def _playwright(path):
    """A started Playwright as far as the lookup reads it."""
    return types.SimpleNamespace(chromium=types.SimpleNamespace(executable_path=str(path)))


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A machine with no Chromium anywhere: no override, no Debian package, an empty PATH."""
    monkeypatch.delenv(browser.OVERRIDE_ENV, raising=False)
    monkeypatch.setattr(browser, "DEBIAN_CHROMIUM", tmp_path / "usr" / "bin" / "chromium")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    return types.SimpleNamespace(
        root=tmp_path,
        debian=browser.DEBIAN_CHROMIUM,
        bin=bin_dir,
        playwright_own=tmp_path / "ms-playwright" / "chromium-1255" / "chrome-linux" / "chrome",
    )


def test_playwrights_own_chromium_comes_first(machine):
    _executable(machine.playwright_own)
    _executable(machine.debian, LAUNCHER)
    assert chromium_executable(_playwright(machine.playwright_own)) == str(machine.playwright_own)


def test_debians_chromium_when_playwrights_was_never_downloaded(machine):
    # Playwright names its Chromium's path whether or not the browser is there (as here).
    _executable(machine.debian, LAUNCHER)
    assert chromium_executable(_playwright(machine.playwright_own)) == str(machine.debian)


def test_debians_chromium_when_playwright_is_not_installed(machine, monkeypatch):
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)
    _executable(machine.debian, LAUNCHER)
    assert chromium_executable() == str(machine.debian)


def test_neither_is_one_line_naming_both_install_commands(machine):
    with pytest.raises(ChromiumNotFound) as raised:
        chromium_executable(_playwright(machine.playwright_own))
    message = str(raised.value)
    assert message == INSTALL_HINT
    assert "\n" not in message
    assert "python -m playwright install --with-deps chromium" in message
    assert "apt-get install chromium" in message


def test_without_a_started_playwright_one_is_started_only_to_ask_and_stopped(machine, monkeypatch):
    _executable(machine.playwright_own)
    calls = []

    class Started:
        chromium = types.SimpleNamespace(executable_path=str(machine.playwright_own))

        def stop(self):
            calls.append("stop")

    class Driver:
        def start(self):
            calls.append("start")
            return Started()

    fake = types.ModuleType("playwright.sync_api")
    fake.Error = type("Error", (Exception,), {})
    fake.sync_playwright = Driver
    monkeypatch.setitem(sys.modules, "playwright.sync_api", fake)
    assert chromium_executable() == str(machine.playwright_own)
    assert calls == ["start", "stop"]


@pytest.mark.parametrize("name", ["chromium", "chromium-browser", "google-chrome"])
def test_a_chromium_on_path_when_debians_is_absent(machine, name):
    found = _executable(machine.bin / name)
    assert chromium_executable(_playwright(machine.playwright_own)) == str(found)


def test_ubuntus_snap_shim_is_passed_over(machine):
    _executable(machine.bin / "chromium-browser", SNAP_SHIM)
    with pytest.raises(ChromiumNotFound, match=r"^no Chromium found"):
        chromium_executable(_playwright(machine.playwright_own))
    chrome = _executable(machine.bin / "google-chrome", LAUNCHER)
    assert chromium_executable(_playwright(machine.playwright_own)) == str(chrome)


def test_what_counts_as_the_snap(machine):
    assert is_snap_shim(_executable(machine.root / "shim", SNAP_SHIM))
    snap = _executable(machine.root / "usr-bin" / "snap")
    link = machine.bin / "chromium"
    link.symlink_to(snap)
    assert is_snap_shim(link)
    # Debian's launcher is a script too; a word that merely contains "snap" is not the snap.
    assert not is_snap_shim(_executable(machine.root / "launcher", LAUNCHER))
    assert not is_snap_shim(_executable(machine.root / "elf", ELF + b" snap "))


def test_a_file_that_cannot_be_run_is_not_a_browser(machine):
    _executable(machine.debian, LAUNCHER, mode=0o644)
    with pytest.raises(ChromiumNotFound):
        chromium_executable(_playwright(machine.playwright_own))


def test_the_override_wins_as_a_path_or_a_command(machine, monkeypatch):
    _executable(machine.playwright_own)
    mine = _executable(machine.root / "my-chromium")
    monkeypatch.setenv(browser.OVERRIDE_ENV, str(mine))
    assert chromium_executable(_playwright(machine.playwright_own)) == str(mine)
    on_path = _executable(machine.bin / "chrome-dev")
    monkeypatch.setenv(browser.OVERRIDE_ENV, "chrome-dev")
    assert chromium_executable(_playwright(machine.playwright_own)) == str(on_path)


def test_an_override_that_is_not_there_says_so_and_does_not_fall_back(machine, monkeypatch):
    _executable(machine.debian, LAUNCHER)
    monkeypatch.setenv(browser.OVERRIDE_ENV, "/nowhere/chromium")
    with pytest.raises(ChromiumNotFound, match=r"^KUBE_ALIVE_CHROMIUM=/nowhere/chromium: no such"):
        chromium_executable(_playwright(machine.playwright_own))
