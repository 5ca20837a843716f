"""Table-driven tests of the OOM back-off's decision functions (its proofs.py), of what its
scenario states and of its report view, no cluster.

Every function gets its empty / no-data case: a claim is never proven by nothing.
"""

import copy
import re

import pytest

from suite import admitted, manifests, parts
from suite.behaviours.oom_backoff import proofs, view
from suite.behaviours.oom_backoff import test_oom_backoff as ob
from suite.samples import ContainerView, PodView, pod_view
from suite.tests.fakes import answer

KUBELET = re.compile(r"kubelet", re.IGNORECASE)
KUBE_PROXY = re.compile(parts.KUBE_PROXY, re.IGNORECASE)
CONTROLLER = re.compile(parts.ENDPOINTSLICE_CONTROLLER, re.IGNORECASE)
T0 = 1_800_000_000.0


def stamp(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(T0 + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def view_of(state, restarts, *, reason="", started=None, finished=None, last=None):
    """A PodView of one memhog container. `last`: (reason, started, finished) of the last run."""
    last_reason, last_started, last_finished = last or ("", None, None)
    return PodView(
        name="memhog-a",
        phase="Running",
        ready=state == "running" and restarts == 3,
        terminating=False,
        containers=(
            ContainerView(
                name="memhog",
                state=state,
                reason=reason,
                restart_count=restarts,
                started_at=stamp(started) if started is not None else "",
                finished_at=stamp(finished) if finished is not None else "",
                last_reason=last_reason,
                last_exit_code=137 if last_reason else None,
                last_started_at=stamp(last_started) if last_started is not None else "",
                last_finished_at=stamp(last_finished) if last_finished is not None else "",
            ),
        ),
    )


#: What a healthy cluster reported: killed at 10, restarted at 11 (at once), killed at 12,
#: restarted at 24 (back-off 10 s), killed at 25, restarted at 47 (back-off 20 s), serving.
HEALTHY = [
    view_of("running", 0, started=0),
    view_of("terminated", 0, reason="OOMKilled", started=0, finished=10),
    view_of("running", 1, started=11, last=("OOMKilled", 0, 10)),
    # run 1 ended before the kubelet reported it running: seen only as the last state
    view_of("waiting", 2, reason="CrashLoopBackOff", last=("OOMKilled", 11, 12)),
    view_of("waiting", 3, reason="CrashLoopBackOff", last=("OOMKilled", 24, 25)),
    view_of("running", 3, started=47, last=("OOMKilled", 24, 25)),
]


def history(views):
    return [(float(i), T0 + i, v) for i, v in enumerate(views)]


def delays_of(runs, backoff=None):
    return proofs.restart_delays(
        runs,
        3,
        backoff or proofs.backoff_of({"kubeletconfig": {}}),
        immediate_s=ob.IMMEDIATE_S,
        recheck_s=ob.RECHECK_S,
        resolution_s=ob.RESOLUTION_S,
    )


# -- the runs ------------------------------------------------------------------------------------


def test_every_run_is_read_from_the_current_and_the_last_state():
    runs = proofs.container_runs(history(HEALTHY), "memhog")
    assert sorted(runs) == [0, 1, 2, 3]
    assert [(r.started, r.finished, r.reason) for r in map(runs.get, range(3))] == [
        (T0, T0 + 10, "OOMKilled"),
        (T0 + 11, T0 + 12, "OOMKilled"),
        (T0 + 24, T0 + 25, "OOMKilled"),
    ]
    assert runs[3].started == T0 + 47
    assert runs[3].finished is None


def test_no_history_no_runs_and_the_oom_claim_fails():
    assert proofs.container_runs([], "memhog") == {}
    assert proofs.container_runs([(0.0, T0, None)], "memhog") == {}
    problems = proofs.oom_problems({}, 3)
    assert len(problems) == 4
    assert "never reported" in problems[0]


def test_the_kill_reason_is_read_never_guessed():
    runs = proofs.container_runs(history(HEALTHY), "memhog")
    assert proofs.oom_problems(runs, 3) == []
    errored = dict(runs)
    errored[1] = proofs.Run(1, T0 + 11, T0 + 12, "Error", 137)
    (problem,) = proofs.oom_problems(errored, 3)
    assert "run 2 ended Error (exit 137), not OOMKilled" in problem
    assert proofs.oom_problems({k: v for k, v in runs.items() if k != 3}, 3) == [
        "run 4 (after 3 restarts) was never seen starting"
    ]


def test_a_pod_view_keeps_the_kubelets_times():
    obj = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "memhog", "image": "i"}]},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "memhog",
                    "restartCount": 2,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {
                        "terminated": {
                            "reason": "OOMKilled",
                            "exitCode": 137,
                            "startedAt": "2026-12-05T11:00:01Z",
                            "finishedAt": "2026-12-05T11:00:02Z",
                        }
                    },
                }
            ],
        },
    }
    (container,) = pod_view(obj).containers
    assert (container.last_started_at, container.last_finished_at) == (
        "2026-12-05T11:00:01Z",
        "2026-12-05T11:00:02Z",
    )
    assert container.started_at == ""
    assert proofs.parse_time("2026-12-05T11:00:02Z") - proofs.parse_time(
        "2026-12-05T11:00:01Z"
    ) == pytest.approx(1.0)
    assert proofs.parse_time("") is None
    assert proofs.parse_time("yesterday") is None


# -- the back-off --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configz", "initial", "cap"),
    [
        (None, 10, 300),
        ({"kubeletconfig": {"crashLoopBackOff": {}}}, 10, 300),
        # the config says so but the gate is off: the kubelet ignores it
        ({"kubeletconfig": {"crashLoopBackOff": {"maxContainerRestartPeriod": "5s"}}}, 10, 300),
        (
            {
                "kubeletconfig": {
                    "featureGates": {"KubeletCrashLoopBackOffMax": True},
                    "crashLoopBackOff": {"maxContainerRestartPeriod": "5s"},
                }
            },
            5,
            5,
        ),
        (
            {
                "kubeletconfig": {
                    "featureGates": {"KubeletCrashLoopBackOffMax": True},
                    "crashLoopBackOff": {"maxContainerRestartPeriod": "1m30s"},
                }
            },
            10,
            90,
        ),
        ({"kubeletconfig": {"featureGates": {"ReduceDefaultCrashLoopBackOffDecay": True}}}, 1, 60),
    ],
)
def test_the_backoff_comes_from_the_kubelets_config(configz, initial, cap):
    backoff = proofs.backoff_of(configz)
    assert (backoff.initial_s, backoff.max_s) == (initial, cap)
    assert backoff.expected_s(1) == 0
    assert backoff.expected_s(2) == initial
    assert backoff.expected_s(3) == min(2 * initial, cap)
    assert backoff.expected_s(20) == cap


def test_the_healthy_staircase_passes_and_its_windows_come_from_the_mechanism():
    delays = delays_of(proofs.container_runs(history(HEALTHY), "memhog"))
    assert [d.delay_s for d in delays] == [1, 12, 22]
    assert [(d.low_s, d.high_s) for d in delays] == [(-1, 4), (9, 29), (19, 39)]
    assert proofs.staircase_problems(delays) == []


@pytest.mark.parametrize(
    ("restart_2_at", "words"),
    [
        (13, "before its back-off of 10s"),  # 1 s after the kill: no back-off at all
        (45, "later than its back-off of 10s allows"),
    ],
)
def test_a_restart_outside_its_window_names_the_kubelet(restart_2_at, words):
    runs = proofs.container_runs(history(HEALTHY), "memhog")
    runs[2] = proofs.Run(2, T0 + restart_2_at, runs[2].finished, "OOMKilled")
    problems = proofs.staircase_problems(delays_of(runs))
    assert any(words in p for p in problems)
    assert all(KUBELET.search(p) for p in problems if "restart 2" in p)


def test_a_shorter_configured_backoff_is_not_failed():
    reduced = proofs.backoff_of(
        {"kubeletconfig": {"featureGates": {"ReduceDefaultCrashLoopBackOffDecay": True}}}
    )
    runs = proofs.container_runs(history(HEALTHY), "memhog")
    # 2 s after the second kill (back-off 1 s), 5 s after the third (back-off 2 s)
    runs[2] = proofs.Run(2, T0 + 14, T0 + 15, "OOMKilled")
    runs[3] = proofs.Run(3, T0 + 20)
    assert proofs.staircase_problems(delays_of(runs, reduced)) == []


def test_no_restarts_measured_is_a_problem():
    assert proofs.staircase_problems([]) == ["no restart was measured"]
    (delay, *_) = delays_of({})
    assert "not seen" in (delay.problem() or "")


# -- the requests --------------------------------------------------------------------------------


def test_failures_only_while_the_dead_pod_was_routed_to():
    answers = [answer(t, pod="b") for t in (1.0, 2.0, 9.0)] + [answer(5.0, ok=False)]
    assert proofs.failures_outside_problems(answers, 4.0, 7.0, skew_s=0.1) == []
    assert proofs.failures_outside_problems([], 4.0, 7.0, skew_s=0.1) == [
        "no request went through the Service"
    ]


def test_a_failure_after_the_routing_bound_names_kube_proxy():
    answers = [answer(1.0, pod="b"), answer(5.0, ok=False), answer(12.0, ok=False)]
    (problem,) = proofs.failures_outside_problems(answers, 4.0, 7.0, skew_s=0.1)
    assert KUBE_PROXY.search(problem)
    assert "1 requests failed after the OOM kill" in problem


def test_failures_of_a_pod_never_taken_out_name_the_endpointslice_controller():
    answers = [answer(1.0, pod="b"), answer(12.0, ok=False)]
    (problem,) = proofs.failures_outside_problems(answers, 4.0, None, skew_s=0.1)
    assert CONTROLLER.search(problem)


def test_a_failure_before_the_oom_is_a_problem():
    answers = [answer(1.0, ok=False), answer(5.0, pod="b")]
    (problem,) = proofs.failures_outside_problems(answers, 4.0, 7.0, skew_s=0.1)
    assert "before the OOM" in problem


def test_ready_during_the_crash_loop_is_seen():
    views = [view_of("running", 1, started=11), view_of("running", 3, started=47)]
    assert proofs.ready_between(history(views), T0 - 1, T0 + 5) == [T0 + 1]
    assert proofs.ready_between(history(views), T0 - 1, T0 + 0.5) == []
    assert proofs.ready_between([], T0, T0 + 100) == []


# -- what the scenario states --------------------------------------------------------------------


def memhog_template_pod():
    deployment = next(o for o in manifests.load_app("memhog") if o["kind"] == "Deployment")
    pod = {
        "metadata": {"name": "template"},
        "spec": copy.deepcopy(deployment["spec"]["template"]["spec"]),
    }
    for container in pod["spec"]["containers"]:
        container.get("readinessProbe", {}).setdefault("successThreshold", 1)
    return pod


def test_the_memhog_manifest_carries_what_the_scenario_states():
    assert ob.admitted_problems([memhog_template_pod()]) == []


def test_a_raised_memory_limit_fails_the_read_back_in_one_line_naming_the_field():
    pod = memhog_template_pod()
    pod["spec"]["containers"][0]["resources"]["limits"]["memory"] = "1Gi"
    found = ob.admitted_problems([pod])
    line = admitted.rewritten(found, "the memhog pods")
    assert re.search(parts.ADMISSION + r"resources\.limits\.memory", line)


def test_the_deadline_and_the_floor_come_from_the_backoff():
    backoff = ob.STATED_BACKOFF
    assert ob.FLOOR.total_s == 1 + 1 + 30 + 1 + 1
    assert ob.serving_again_deadline_s(backoff) == pytest.approx(
        (0 + 3 + 1) + (10 + 15 + 3 + 1) + (20 + 15 + 3 + 1) + 3 * ob.RUN_S + 4
    )
    longer = proofs.Backoff(20.0, 300.0, "test")
    assert ob.floor(longer).total_s == ob.FLOOR.total_s + 30


# -- the view ------------------------------------------------------------------------------------


FIGURES = {
    "kills": 3,
    "reasons": ["OOMKilled"] * 3,
    "restart_delays_s": [1.0, 15.0, 33.0],
    "expected_backoff_s": [0.0, 10.0, 20.0],
    "delay_windows_s": [[-1.0, 4.0], [9.0, 29.0], [19.0, 39.0]],
    "runs": [
        {"started": T0, "finished": T0 + 2, "reason": "OOMKilled"},
        {"started": T0 + 3, "finished": T0 + 4, "reason": "OOMKilled"},
        {"started": T0 + 19, "finished": T0 + 20, "reason": "OOMKilled"},
        {"started": T0 + 53, "finished": None, "reason": ""},
    ],
    "requests": 2077,
    "failed": 17,
    "serving_again_after_s": 52.68,
}


def test_the_headline_tells_the_kills_the_staircase_and_the_requests():
    text = view.headline(FIGURES)
    assert text is not None
    assert "3 reported OOMKilled" in text
    assert "restarts after 1, 15, 33 s (back-off 0, 10, 20 s)" in text
    assert "17 of 2" in text
    assert view.headline({}) is None
    assert view.headline({**FIGURES, "failed": 0}).count("0 of") == 1


def test_the_container_lane_merges_repeated_states():
    recording = {
        "pods": [
            {"t": 1.0, "name": "p", "state": {"containers": [{"state": "running"}]}},
            {"t": 2.0, "name": "p", "state": {"containers": [{"state": "running"}]}},
            {
                "t": 3.0,
                "name": "p",
                "state": {"containers": [{"state": "terminated", "reason": "OOMKilled"}]},
            },
            {"t": 4.0, "name": "q", "state": {"containers": [{"state": "running"}]}},
        ]
    }
    assert view.container_spans(recording, "p", 10.0) == [
        (1.0, 3.0, "running"),
        (3.0, 10.0, "OOMKilled"),
    ]
    assert view.container_spans(None, "p", 10.0) == []


def test_no_traffic_no_chart():
    assert view.chart({"figures": FIGURES}, [], 60.0, "x") is None
    assert (
        view.chart({"figures": FIGURES, "probes": [{}], "recording": None}, [], 60.0, "x") is None
    )


def test_every_figure_has_words():
    assert set(FIGURES) <= set(view.FIGURE_WORDS)
