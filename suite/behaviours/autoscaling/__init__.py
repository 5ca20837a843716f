"""CPU autoscaling: an HPA scales cpuhog out under load and back in after (the metrics API)."""

from suite import parts
from suite.behaviours.autoscaling import view
from suite.behaviours.base import Behaviour, Catch

BEHAVIOUR = Behaviour(
    key="autoscaling",
    title="CPU autoscaling",
    what=(
        "A HorizontalPodAutoscaler adds replicas when CPU use passes its target and removes them "
        "after the load is gone. CPU-heavy requests are sent for a bounded time; the replica "
        "count follows."
    ),
    chart_caption=(
        "Top: CPU use (the HPA's average, in % of the pods' CPU request) against the target. "
        "Bottom: the replicas the HPA asked for, and the pods that were Ready."
    ),
    matrix_test="test_cpu_load_scales_the_deployment_out_and_back_in",
    headlines=(view.headline,),
    chart=view.chart,
    figure_words=view.FIGURE_WORDS,
    # Not here: `metrics-api-gone` (`localcluster fault list`). With no metrics API the scenario
    # cannot even start; it stops at its precondition with one line naming the fix (install
    # metrics-server), which is right, and which the fault matrix rightly does not count as a catch.
    catches=(
        Catch("hpa-controller-off", parts.HPA_CONTROLLER),
        Catch("admission-cpu-request-changed", parts.ADMISSION + r"requests\.cpu"),
    ),
    variants=("hpa-sync-slow", "metrics-resolution-slow"),
)
