"""Two runs on the one kind cluster named kube-alive: neither deletes or replaces it under the
other (suite.providers.kind.ClusterUsers). kind itself is faked; the other run is a real process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from suite.providers import ProviderOptions, kind
from suite.providers.base import ProviderError

REPO = Path(kind.__file__).resolve().parents[2]


@pytest.fixture
def users(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "kind-users"
    monkeypatch.setenv(kind.USERS_DIR_ENV, str(directory))
    monkeypatch.setattr(kind.shutil, "which", lambda name: f"/usr/bin/{name}")
    return directory


@pytest.fixture
def other_run():
    """Another live process (a run in progress), stopped at the end."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield child
    child.kill()
    child.wait(10)


class FakeKind:
    """`kind`, `docker` and `kubectl` as the provider calls them; what ran, in order."""

    def __init__(self, monkeypatch, *, exists: bool, ready: bool = True) -> None:
        self.exists = exists
        self.ready = ready
        self.commands: list[list[str]] = []
        monkeypatch.setattr(kind, "run_command", self.run)

    def run(self, args, **kwargs):
        args = list(args)
        self.commands.append(args)
        out = ""
        if args == kind.version_command():
            out = "kind v0.30.0 go1.24.6 linux/amd64\n"
        elif args[:2] == ["docker", "version"]:
            out = "20.10.24\n"
        elif args == kind.get_clusters_command():
            out = "kube-alive\n" if self.exists else ""
        elif args == kind.kubeconfig_command():
            out = "apiVersion: v1\n"
        elif "wait" in args:
            if not self.ready:
                raise ProviderError("node/kube-alive-worker: timed out waiting for the condition")
            out = "node/kube-alive-worker condition met\n"
        elif args == kind.delete_command():
            self.exists = False
        elif args[:3] == ["kind", "create", "cluster"]:
            self.exists, self.ready = True, True
        return types.SimpleNamespace(stdout=out)

    @property
    def changed(self) -> list[str]:
        """The create and delete commands that ran."""
        return [c[1] for c in self.commands if c[:2] in (["kind", "create"], ["kind", "delete"])]


def provider(said: list[str] | None = None, **options) -> kind.KindProvider:
    log = (lambda m: None) if said is None else said.append
    return kind.KindProvider(ProviderOptions(**options), log)


def as_user(users: Path, pid: int) -> None:
    kind.ClusterUsers(users, pid=pid).join()


def test_a_live_run_counts_as_a_user_until_its_process_is_gone(users, other_run):
    as_user(users, other_run.pid)
    me = kind.ClusterUsers(users)
    me.join()
    (other,) = me.others()
    assert other.startswith(f"pid {other_run.pid} (")
    assert "time.sleep(60)" in other
    other_run.kill()
    other_run.wait(10)
    assert me.others() == []
    assert sorted(p.name for p in (users / "users").iterdir()) == [f"{os.getpid()}.json"]


def test_a_record_whose_pid_now_names_another_process_does_not_count(users, other_run):
    as_user(users, other_run.pid)
    record = users / "users" / f"{other_run.pid}.json"
    record.write_text(record.read_text().replace('"started": "', '"started": "1'))
    assert kind.ClusterUsers(users).others() == []


def test_an_unhealthy_cluster_in_use_by_another_run_is_neither_deleted_nor_recreated(
    users, other_run, monkeypatch
):
    fake = FakeKind(monkeypatch, exists=True, ready=False)
    as_user(users, other_run.pid)
    with pytest.raises(ProviderError) as error:
        provider().prepare()
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("kind: cluster kube-alive is not healthy (node/kube-alive-worker")
    assert f"in use by pid {other_run.pid} (" in message
    assert message.endswith("not deleting it under that run; run again once it is done")
    assert fake.changed == []


def test_an_unhealthy_cluster_nobody_uses_is_replaced(users, other_run, monkeypatch):
    fake = FakeKind(monkeypatch, exists=True, ready=False)
    as_user(users, other_run.pid)
    other_run.kill()
    other_run.wait(10)  # a crashed run: its record stays, its process is gone
    said: list[str] = []
    run = provider(said)
    run.prepare()
    assert fake.changed == ["delete", "create"]
    assert run.created
    assert any("probably left by a crashed run" in line for line in said)


def test_the_creator_leaves_the_cluster_to_a_run_still_using_it_and_the_last_deletes_it(
    users, other_run, monkeypatch
):
    fake = FakeKind(monkeypatch, exists=False)
    said: list[str] = []
    creator = provider(said)
    creator.prepare()
    assert creator.created
    # The second run reuses it: here, a live process with its record (a run in progress).
    as_user(users, other_run.pid)
    creator.teardown()
    assert fake.changed == ["create"]
    assert said[-1] == (
        f"kind: leaving cluster kube-alive to pid {other_run.pid} ({' '.join(other_run.args)}), "
        "still using it; the last of them deletes it"
    )
    # The second run ends: it did not create the cluster, but it is the last user.
    other_run.kill()
    other_run.wait(10)
    last = provider()
    last.prepare()  # reuses it
    assert not last.created
    last.teardown()
    assert fake.changed == ["create", "delete"]
    assert not (users / kind.ClusterUsers.DELETE_WHEN_UNUSED).exists()


def test_a_reused_cluster_is_left_as_it_was_and_keep_cluster_keeps_a_created_one(
    users, monkeypatch
):
    fake = FakeKind(monkeypatch, exists=False)
    kept = provider(keep_cluster=True)
    kept.prepare()
    kept.teardown()
    assert fake.changed == ["create"]
    reused = provider()
    reused.prepare()
    assert not reused.created
    reused.teardown()
    assert fake.changed == ["create"]
    alone = FakeKind(monkeypatch, exists=False)
    creator = provider()
    creator.prepare()
    creator.teardown()
    assert alone.changed == ["create", "delete"]


HOLDER = """
import sys, time
from suite.providers import kind
with kind.ClusterUsers(kind.users_dir()).lock(print):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_run_waiting_for_another_runs_decision_says_who_and_gives_up_in_one_line(
    users, monkeypatch
):
    fake = FakeKind(monkeypatch, exists=False)
    monkeypatch.setattr(kind, "USERS_LOCK_WAIT_S", 1.0)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        said: list[str] = []
        started = time.monotonic()
        with pytest.raises(ProviderError) as error:
            provider(said).prepare()
        assert time.monotonic() - started >= 1.0
    finally:
        holder.kill()
        holder.wait(10)
    waiting = [line for line in said if "waiting for the lock" in line]
    assert len(waiting) == 1
    assert f"held by pid {holder.pid} (" in waiting[0]
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("kind: cluster kube-alive (one run at a time creates, replaces")
    assert f"still held by pid {holder.pid} (" in message
    assert fake.changed == []
