"""The registry (suite.behaviours) is the one place a behaviour is named: its folder holds what
it declares, and the README's tables, .ci/run and the tools agree with it."""

import ast
import re
from pathlib import Path

import pytest

from suite import behaviours
from suite.tools import faultmatrix, soak

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def _rows(header: str) -> list[list[str]]:
    """The rows of the README table whose header row starts with `header`."""
    lines = README.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _named(cell: str) -> set[str]:
    """The behaviours a README cell names ("self-healing (infected pod), rolling update")."""
    return {b.key for b in behaviours.ALL if b.key.replace("-", " ") in cell.replace("-", " ")}


def test_keys_and_folders_are_one_to_one():
    keys = [b.key for b in behaviours.ALL]
    assert len(set(keys)) == len(keys)
    folders = sorted(
        p.name for p in (REPO / "suite" / "behaviours").iterdir() if (p / "__init__.py").is_file()
    )
    assert folders == sorted(b.package for b in behaviours.ALL), "a folder not registered"


@pytest.mark.parametrize("behaviour", behaviours.ALL, ids=lambda b: b.key)
def test_a_behaviour_folder_holds_its_scenario_proofs_and_view(behaviour):
    folder = REPO / behaviour.path.rsplit("/", 1)[0]
    for name in (behaviour.module, "proofs.py", "test_proofs.py", "view.py"):
        assert (folder / name).is_file(), f"{behaviour.key}: no {name} in {folder}"
    tree = ast.parse((REPO / behaviour.path).read_text())
    tests = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert behaviour.matrix_test in tests, f"{behaviour.key}: no {behaviour.matrix_test}"
    assert behaviour.headlines, f"{behaviour.key}: no headline"


@pytest.mark.parametrize("behaviour", behaviours.ALL, ids=lambda b: b.key)
def test_of_nodeid_finds_the_behaviour_of_its_tests(behaviour):
    assert behaviours.of_nodeid(behaviour.matrix_nodeid) is behaviour
    assert behaviours.by_key(behaviour.key) is behaviour
    assert behaviours.of_nodeid("suite/tests/test_report.py::test_x") is None
    with pytest.raises(KeyError, match="known: load-balancing"):
        behaviours.by_key("nope")


def test_the_readme_table_lists_every_behaviour_and_its_scenario():
    rows = _rows("behaviour")
    assert [row[1] for row in rows] == [f"`{b.path}`" for b in behaviours.ALL]
    assert [_named(row[0]) for row in rows] == [{b.key} for b in behaviours.ALL]


def test_the_readme_fault_table_says_what_each_behaviour_declares():
    rows = {re.sub(r"`([^`]+)`.*", r"\1", row[0]): _named(row[2]) for row in _rows("fault")}
    declared = {
        target.fault: {behaviours.of_nodeid(t).key for t in target.tests}
        for target in faultmatrix.MATRIX
    }
    assert rows == declared


def test_the_readme_variant_table_says_what_each_behaviour_declares():
    rows = {row[0].strip("`"): _named(row[2]) for row in _rows("healthy variant")}
    declared = {
        variant.name: {behaviours.of_nodeid(t).key for t in variant.tests}
        for variant in faultmatrix.VARIANTS
    }
    assert rows == declared


def test_ci_and_the_tools_take_the_scenarios_from_the_registry():
    # .ci/run and the step scripts it runs (scripts/ci/)
    ci = "".join(
        path.read_text()
        for path in [REPO / ".ci" / "run", *sorted((REPO / "scripts" / "ci").glob("*.sh"))]
    )
    assert "python -m suite.behaviours --registry-path" in ci
    for behaviour in behaviours.ALL:
        assert behaviour.module not in ci, f".ci/run or scripts/ci/ spells {behaviour.module}"
    assert soak.SETS["behaviours"] == tuple(b.path for b in behaviours.ALL)


def test_the_cli_prints_the_paths(capsys):
    from suite.behaviours.__main__ import main

    assert main([]) == 0
    assert capsys.readouterr().out.split() == [b.path for b in behaviours.ALL]
    assert main(["--registry-path"]) == 0
    shown = capsys.readouterr().out.split()
    assert shown == [b.path for b in behaviours.ALL if b.on_registry_path]
    assert shown, "no behaviour runs on the registry path"


@pytest.mark.parametrize("behaviour", behaviours.ALL, ids=lambda b: b.key)
def test_the_clusters_a_behaviour_declares_are_its_scenarios_only_on_marker(behaviour):
    import importlib

    module = importlib.import_module(behaviour.path.removesuffix(".py").replace("/", "."))
    marks = getattr(module, "pytestmark", [])
    marks = marks if isinstance(marks, list) else [marks]
    only_on = [m for m in marks if m.name == "only_on"]
    assert tuple(only_on[0].args if only_on else ()) == behaviour.clusters


def test_the_cli_leaves_out_what_does_not_run_on_a_cluster(capsys):
    from suite.behaviours.__main__ import main

    assert main(["--cluster", "local"]) == 0
    shown = capsys.readouterr().out.split()
    assert shown == [b.path for b in behaviours.ALL if b.runs_on("local")]
    assert behaviours.by_key("node-failure").path not in shown
