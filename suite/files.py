"""Writing the files a person or another process reads while a run may still be writing them.

A report page, report.json, junit.xml or fault-matrix.json is opened by a browser, a CI step or the
next run at any moment; a plain write truncates the file first, so a reader (or a run killed
half-way) sees an empty or cut-off file. Here a temporary file is written in the same directory
and renamed over the target (`os.replace`, atomic within one filesystem): a reader sees the old
file or the new one, never a part.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; it replaces `path` in one step when the block
    ends without an exception, and is removed when it does not (nothing half-written is left).

    For writers that want a file name (pytest's junitxml); `write_atomic` for content in hand.
    """
    handle, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".{os.getpid()}.tmp"
    )
    os.close(handle)
    temporary = Path(name)
    try:
        # mkstemp makes the file 0600: keep the mode of the file replaced, else what a plain
        # write makes under the usual umask, so the people and tools that read reports still can.
        mode = _mode_of(path)
        yield temporary
        temporary.chmod(mode)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_atomic(path: Path, content: str | bytes) -> Path:
    """Replace `path` with `content` (text as UTF-8) in one step; returns `path`."""
    data = content.encode() if isinstance(content, str) else content
    with replacing(path) as temporary:
        temporary.write_bytes(data)
    return path


def _mode_of(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return 0o644
