import re

import pytest

from suite import naming

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def test_slug_drops_test_prefix_and_odd_characters():
    assert naming.slug("test_Service_Spreads[kill-1]") == "service-spreads-kill-1"
    assert naming.slug("___") == "test"


def test_short_names_are_readable():
    name = naming.namespace_name("3f2a1c", "test_load_balancing", "a.py::test_load_balancing")
    assert name == "ka-3f2a1c-load-balancing"


def test_long_names_are_truncated_with_a_hash_and_stay_unique():
    long = "test_" + "very_long_scenario_name_" * 5
    first = naming.namespace_name("3f2a1c", long + "a", "mod.py::" + long + "a")
    second = naming.namespace_name("3f2a1c", long + "b", "mod.py::" + long + "b")
    assert len(first) <= 63
    assert len(second) <= 63
    assert first != second
    assert DNS_LABEL.match(first)
    assert first.endswith("-" + naming.short_hash("mod.py::" + long + "a"))


@pytest.mark.parametrize("run_id", ["a", "3f2a1c", "abcdefabcdef"])
@pytest.mark.parametrize("length", [1, 40, 52, 53, 54, 200])
def test_every_name_is_a_dns_label_of_at_most_63(run_id, length):
    test_name = "test_" + "x" * length + "[p-1]"
    name = naming.namespace_name(run_id, test_name, "f.py::" + test_name)
    assert len(name) <= 63
    assert DNS_LABEL.match(name), name
    assert name.startswith(f"ka-{run_id}-")


def test_hashed_form_differs_for_same_test_name_in_different_modules():
    a = naming.namespace_name("r1", "test_x", "a.py::test_x", hashed=True)
    b = naming.namespace_name("r1", "test_x", "b.py::test_x", hashed=True)
    assert a != b
    assert a.startswith("ka-r1-x-")


def test_labels_carry_run_and_restricted_pod_security():
    labels = naming.namespace_labels("r1", "gw0")
    assert labels["app.kubernetes.io/part-of"] == "kube-alive"
    assert labels["kube-alive/run-id"] == "r1"
    assert labels["kube-alive/worker"] == "gw0"
    for mode in ("enforce", "warn", "audit"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


def test_run_selector():
    assert naming.run_selector("r1") == "app.kubernetes.io/part-of=kube-alive,kube-alive/run-id=r1"
    assert naming.run_selector("r1", "gw1").endswith(",kube-alive/worker=gw1")


def test_run_id_from_environment_is_validated(monkeypatch):
    monkeypatch.setenv(naming.RUN_ID_ENV, "abc123")
    assert naming.new_run_id() == "abc123"
    monkeypatch.setenv(naming.RUN_ID_ENV, "Not-OK")
    with pytest.raises(ValueError, match="KUBE_ALIVE_RUN_ID"):
        naming.new_run_id()
    for bad in ("MyRun", "my_run"):
        monkeypatch.setenv(naming.RUN_ID_ENV, bad)
        with pytest.raises(naming.RunIdError, match=f"KUBE_ALIVE_RUN_ID='{bad}': expected 1-12"):
            naming.new_run_id()
    monkeypatch.delenv(naming.RUN_ID_ENV)
    first, second = naming.new_run_id(), naming.new_run_id()
    assert re.fullmatch(r"[0-9a-f]{6}", first)
    assert first != second
