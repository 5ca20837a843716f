"""Report files are replaced in one step (suite.files): a reader sees the old file or the new."""

import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from suite import report
from suite.files import replacing, write_atomic
from suite.report import __main__ as report_main
from suite.tools import faultmatrix, soak


def _held(path: Path):
    """An open handle on the file as it is now (a reader in the middle of reading it)."""
    return path.open()


def test_write_atomic_replaces_the_file_so_a_reader_of_the_old_one_reads_it_whole(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("the previous run's report")
    target.chmod(0o640)
    with _held(target) as reader:
        write_atomic(target, "this run's report")
        # Truncated in place, the old reader would read "" or a mix.
        assert reader.read() == "the previous run's report"
    assert target.read_text() == "this run's report"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_new_file_is_readable_like_a_plain_write(tmp_path):
    write_atomic(tmp_path / "fault-matrix.html", b"<html>")
    assert stat.S_IMODE((tmp_path / "fault-matrix.html").stat().st_mode) == 0o644


def test_a_failed_write_leaves_the_old_file_and_nothing_beside_it(tmp_path):
    target = tmp_path / "junit.xml"
    target.write_text("<old/>")

    def killed_mid_write() -> None:
        with replacing(target) as temporary:
            temporary.write_text("<half")
            raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        killed_mid_write()
    assert target.read_text() == "<old/>"
    assert [p.name for p in tmp_path.iterdir()] == ["junit.xml"]


def _replaced(paths, write):
    """Run `write`; True for each path whose old content an open reader still sees whole."""
    for path in paths:
        path.write_text("old")
    readers = [_held(path) for path in paths]
    try:
        write()
        return [
            reader.read() == "old" and path.read_text() != "old"
            for reader, path in zip(readers, paths, strict=True)
        ]
    finally:
        for reader in readers:
            reader.close()


def test_every_report_writer_replaces_its_files(tmp_path):
    state = SimpleNamespace(
        run_id="r",
        started_wall=0.0,
        outcomes={},
        read_records=dict,
        settings=SimpleNamespace(report_dir=tmp_path),
    )
    assert _replaced(
        [tmp_path / "report.json", tmp_path / "report.html"], lambda: report.write(state, None, 0)
    ) == [True, True]
    matrix = {"run_id": "m", "faults": [], "variants": [], "healthy": {}}
    assert _replaced(
        [tmp_path / "fault-matrix.json", tmp_path / "fault-matrix.html"],
        lambda: faultmatrix.write(tmp_path, matrix),
    ) == [True, True]
    document = {
        "soak_id": "abcd",
        "planned": 1,
        "pytest_args": [],
        "started_utc": "then",
        "elapsed_s": 1,
        "namespaces": "none",
        "runs": [],
    }
    assert _replaced(
        [tmp_path / "soak.json", tmp_path / "soak.md"], lambda: soak.write(tmp_path, document)
    ) == [True, True]
    source = tmp_path / "from-json" / "report.json"
    source.parent.mkdir()
    source.write_text((tmp_path / "report.json").read_text())
    page = source.with_name("report.html")
    assert _replaced([page], lambda: report_main.main([str(source)])) == [True]
    leftovers = [p.name for p in tmp_path.rglob("*.tmp")]
    assert leftovers == []
    assert json.loads((tmp_path / "report.json").read_text())["run_id"] == "r"
    assert os.access(page, os.R_OK)
