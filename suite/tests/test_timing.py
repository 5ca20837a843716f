"""suite.timing: the HPA sync and metrics resolution, read where the cluster shows them."""

from __future__ import annotations

import pytest

from suite import timing
from suite.kube import KubeError
from suite.tests.fakes import FakeKube


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15s", 15.0), ("1m30s", 90.0), ("500ms", 0.5), ("1m0s", 60.0), ("0", 0.0), ("1.5s", 1.5)],
)
def test_go_durations_parse(text, seconds):
    assert timing.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "s", "15x", "1m 30s", "abc"])
def test_non_durations_are_refused(text):
    with pytest.raises(ValueError, match="not a Go duration"):
        timing.parse_duration(text)


def test_flag_value_reads_both_spellings_and_the_last_wins():
    argv = ["x", "--metric-resolution=15s", "--other", "--metric-resolution", "10s"]
    assert timing.flag_value(argv, "--metric-resolution") == "10s"
    assert timing.flag_value(["--metric-resolution-x=1s"], "--metric-resolution") is None


def test_settings_come_from_flags_defaults_or_are_assumed():
    read = timing.read(
        (["kube-controller-manager", "--horizontal-pod-autoscaler-sync-period=5s"], "pod a"),
        (["/metrics-server", "--secure-port=4443"], "deployment b"),
    )
    assert read.hpa_sync == timing.Setting(5.0, "pod a: --horizontal-pod-autoscaler-sync-period=5s")
    # metrics-server without the flag runs at its binary's default, 60 s, and that is no guess.
    assert read.metrics_resolution.seconds == 60.0
    assert not read.metrics_resolution.assumed
    unseen = timing.read(None, None)
    assert (unseen.hpa_sync.seconds, unseen.metrics_resolution.seconds) == (15.0, 15.0)
    assert unseen.hpa_sync.assumed
    assert "not visible" in unseen.describe()
    assert timing.ClusterTiming.from_dict(read.to_dict()) == read


def test_an_unreadable_value_falls_back_to_the_default_and_says_so():
    setting = timing.setting_from(
        (["--metric-resolution=soon"], "p"), "--metric-resolution", 15, "m"
    )
    assert setting.assumed
    assert "unreadable" in setting.source


def test_kubeadm_static_pod_and_metrics_server_deployment_are_read_through_the_api():
    kube = FakeKube()
    kube.on(
        "GET",
        "/api/v1/namespaces/kube-system/pods",
        {
            "metadata": {"resourceVersion": "1"},
            "items": [
                {
                    "metadata": {"name": "kube-controller-manager-cp"},
                    "spec": {
                        "containers": [
                            {
                                "name": "kube-controller-manager",
                                "command": [
                                    "kube-controller-manager",
                                    "--horizontal-pod-autoscaler-sync-period=15s",
                                ],
                            }
                        ]
                    },
                }
            ],
        },
    )
    kube.on(
        "GET",
        "/apis/apps/v1/namespaces/kube-system/deployments",
        {
            "metadata": {"resourceVersion": "1"},
            "items": [
                {"metadata": {"name": "coredns"}, "spec": {"template": {"spec": {}}}},
                {
                    "metadata": {"name": "metrics-server"},
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [
                                    {"name": "metrics-server", "args": ["--metric-resolution=15s"]}
                                ]
                            }
                        }
                    },
                },
            ],
        },
    )
    read = timing.read(
        timing.controller_manager_from_api(kube), timing.metrics_server_from_api(kube)
    )
    assert read.hpa_sync.source.startswith("pod kube-system/kube-controller-manager-cp")
    assert read.metrics_resolution.source.startswith("deployment kube-system/metrics-server")
    query = next(q for m, p, q, _ in kube.calls if p.endswith("/pods"))
    assert query["labelSelector"] == "component=kube-controller-manager"


def test_a_forbidden_kube_system_means_not_visible():
    kube = FakeKube()
    kube.on("GET", "/api/v1/namespaces/kube-system/pods", KubeError(403, "Forbidden", "{}"))
    assert timing.controller_manager_from_api(kube) is None
    assert timing.metrics_server_from_api(kube) is None
