"""scripts/readme-commands: what it takes from the README is the set-up block, as written."""

import importlib.machinery
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def script():
    path = REPO / "scripts" / "readme-commands"
    loader = importlib.machinery.SourceFileLoader("readme_commands", str(path))
    spec = importlib.util.spec_from_loader("readme_commands", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_the_readme_block_is_venv_install_then_the_test_command(script):
    setup, test = script.split_commands(script.readme_block(REPO / "README.md"))
    assert setup[0].startswith("python3 -m venv .venv && . .venv/bin/activate")
    assert "python3 -m pip install -e '.[dev]'" in setup
    assert test == "pytest --cluster=local -n 2"


def test_comments_go_but_a_hash_inside_a_word_stays(script, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        "# x\n\n## Set up and run\n\ntext\n\n```sh\n"
        "# a comment line\n"
        "python3 -m pip install 'a#b'     # 1. install\n"
        "pytest -k 'x'   # 2. test\n"
        "```\n\n```sh\nnot this block\n```\n\n## Next\n```sh\nnor this\n```\n"
    )
    assert script.readme_block(readme) == ["python3 -m pip install 'a#b'", "pytest -k 'x'"]


@pytest.mark.parametrize(
    "lines",
    [["pytest"], ["pip install x"], ["pytest", "pip install x"], ["a", "pytest", "pytest"]],
)
def test_the_block_must_be_set_up_lines_then_one_pytest_line(script, lines):
    with pytest.raises(SystemExit, match="set-up lines, then one `pytest` line"):
        script.split_commands(lines)


def test_each_line_is_announced_and_run_in_one_shell(script):
    text = script.script_of(["python3 -m venv .venv && . .venv/bin/activate"], "pytest -x")
    lines = text.splitlines()
    assert lines[1] == "python3 -m venv .venv && . .venv/bin/activate"
    assert lines[3] == "pytest -x"
    assert lines[0].startswith("echo '== readme-commands: python3 -m venv")
