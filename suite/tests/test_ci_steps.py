"""One definition of CI: the GitHub workflow runs only the step scripts of scripts/ci/, each of
which .ci/run (the project's own CI) runs too, in the same order; what differs between them is
set in scripts/ci/env; actions are pinned by commit and the dev tools by a constraints file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "e2e.yml"
CI_RUN = REPO / ".ci" / "run"
STEPS = REPO / "scripts" / "ci"
#: A call of a step script: the whole command, alone on its line.
STEP_CALL = re.compile(r"^\s*(scripts/ci/[\w.-]+\.sh)\s*$", re.MULTILINE)


def workflow_runs(workflow_text: str) -> list[tuple[str, list[str]]]:
    """Each `run:` of every job, in order: (the step's name, its command lines without comments)."""
    workflow = yaml.safe_load(workflow_text)
    runs = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "run" in step:
                lines = [line.strip() for line in step["run"].splitlines()]
                commands = [line for line in lines if line and not line.startswith("#")]
                runs.append((step.get("name", step["run"]), commands))
    return runs


def workflow_problems(workflow_text: str, ci_run_text: str) -> list[str]:
    """What the workflow runs that .ci/run does not (or runs in another order); [] when none."""
    problems = []
    called = []
    for name, commands in workflow_runs(workflow_text):
        if len(commands) != 1 or not STEP_CALL.fullmatch(commands[0]):
            problems.append(f"workflow step {name!r} runs {commands}, not one scripts/ci/ step")
        else:
            called.append(commands[0])
    ci_steps = STEP_CALL.findall(ci_run_text)
    for script in called:
        if script not in ci_steps:
            problems.append(f"the workflow runs {script}, .ci/run does not")
    shared = [script for script in ci_steps if script in called]
    if [s for s in called if s in ci_steps] != shared:
        problems.append(f"the workflow runs {called}, .ci/run runs them in the order {shared}")
    return problems


def github_settings() -> dict[str, str]:
    """The variables scripts/ci/env sets on GitHub's runners (its GITHUB_ACTIONS branch)."""
    env = (STEPS / "env").read_text()
    branch = re.search(r'if \[ "\$\{GITHUB_ACTIONS:-\}" = true \]; then\n(.*?)\nelse\n', env, re.S)
    assert branch, "scripts/ci/env has no GITHUB_ACTIONS branch"
    return dict(re.findall(r"^\s*(CI_\w+)=(\S*)$", branch[1], re.MULTILINE))


def test_the_workflow_runs_only_steps_that_ci_runs_in_the_same_order():
    problems = workflow_problems(WORKFLOW.read_text(), CI_RUN.read_text())
    assert not problems, "; ".join(problems)
    assert len(workflow_runs(WORKFLOW.read_text())) >= 4, "the workflow lost its steps"


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        ("pytest --cluster=kind", "runs ['pytest --cluster=kind'], not one scripts/ci/ step"),
        ("scripts/ci/other.sh", "the workflow runs scripts/ci/other.sh, .ci/run does not"),
        ("scripts/ci/b.sh\nscripts/ci/a.sh", "not one scripts/ci/ step"),
    ],
)
def test_a_workflow_step_that_ci_does_not_run_is_named(run, expected):
    workflow = yaml.safe_dump({"jobs": {"j": {"steps": [{"name": "x", "run": run}]}}})
    problems = workflow_problems(workflow, "scripts/ci/a.sh\nscripts/ci/b.sh\n")
    assert any(expected in problem for problem in problems), problems


def test_steps_in_another_order_are_named():
    steps = [{"run": "scripts/ci/b.sh"}, {"run": "scripts/ci/a.sh"}]
    workflow = yaml.safe_dump({"jobs": {"j": {"steps": steps}}})
    problems = workflow_problems(workflow, "scripts/ci/a.sh\n  scripts/ci/b.sh\n")
    assert problems == [
        "the workflow runs ['scripts/ci/b.sh', 'scripts/ci/a.sh'], "
        ".ci/run runs them in the order ['scripts/ci/a.sh', 'scripts/ci/b.sh']"
    ]


def test_every_step_script_is_run_by_ci_and_reads_the_one_env():
    ci_steps = STEP_CALL.findall(CI_RUN.read_text())
    scripts = sorted(f"scripts/ci/{path.name}" for path in STEPS.glob("*.sh"))
    assert sorted(set(ci_steps)) == scripts, "a scripts/ci/ step that .ci/run does not run"
    assert len(ci_steps) == len(set(ci_steps)), ".ci/run runs a step twice"
    for script in scripts:
        assert '. "$(dirname "$0")/env"' in (REPO / script).read_text(), f"{script}: no env"


def test_the_steps_only_ci_runs_are_switched_off_for_github_in_the_env():
    """Not a second copy: a step the workflow leaves out stops at a switch that env turns off."""
    settings = github_settings()
    called = {commands[0] for _, commands in workflow_runs(WORKFLOW.read_text())}
    for script in STEP_CALL.findall(CI_RUN.read_text()):
        if script in called:
            continue
        switch = re.search(r'^ci_skip_unless "\$(CI_\w+)"', (REPO / script).read_text(), re.M)
        assert switch, f"{script} runs only in .ci/run but has no ci_skip_unless switch"
        assert settings.get(switch[1]) == "0", f"{script}: {switch[1]} is not 0 on GitHub"


def test_actions_are_pinned_by_commit_with_the_release_as_a_comment():
    uses = re.findall(r"uses:\s*(\S+)(.*)$", WORKFLOW.read_text(), re.MULTILINE)
    assert uses
    for action, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action), f"{action}: not a commit"
        assert re.fullmatch(r"\s*# v\d+\.\d+\.\d+", comment), f"{action}: no `# vX.Y.Z` comment"


def test_the_dev_tools_come_from_the_constraints_file():
    constraints = (STEPS / "constraints.txt").read_text()
    pins = dict(re.findall(r"^([\w.-]+)==(\S+)$", constraints, re.MULTILINE))
    for tool in ("pip", "ruff", "mypy", "tox", "pytest", "playwright"):
        assert tool in pins, f"scripts/ci/constraints.txt does not pin {tool}"
    tox_ini = (REPO / "tox.ini").read_text()
    assert "PIP_CONSTRAINT = {toxinidir}/scripts/ci/constraints.txt" in tox_ini
    for step in ("install.sh", "lint-type-unit.sh"):
        assert '-c "$CI_CONSTRAINTS"' in (STEPS / step).read_text(), step


def test_the_kind_step_runs_only_the_e2e_tests_the_unit_step_left():
    """Each test once per job: the unit tests run in tox, the kind run takes only e2e."""
    assert "tox -e lint,type,unit" in (STEPS / "lint-type-unit.sh").read_text()
    assert re.search(r"args=\(--cluster=kind -m e2e ", (STEPS / "pytest-kind.sh").read_text())


def test_release_binaries_are_pinned_for_the_versions_go_tool_builds():
    script = (REPO / "scripts" / "go-tool.sh").read_text()
    modules = dict(re.findall(r'\[(\w+)\]="[^"@]+@(v[0-9.]+)"', script))
    releases = re.findall(r'\[(\w+)/(amd64|arm64)\]="(\S+) ([0-9a-f]{64})"', script)
    assert {(name, arch) for name, arch, _, _ in releases} == {
        (name, arch) for name in ("kind", "actionlint") for arch in ("amd64", "arm64")
    }
    for name, _arch, url, _sum in releases:
        assert f"/{modules[name]}/" in url, f"{name}: {url} is not for {modules[name]}"
