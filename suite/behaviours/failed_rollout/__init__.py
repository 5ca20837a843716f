"""A failed rollout and the way back: a version that never becomes Ready stops within the
strategy, the Deployment reports ProgressDeadlineExceeded, and an undo to the previous revision
restores full capacity, all under traffic without a failed request (incver with NEVER_READY=1)."""

from suite import parts
from suite.behaviours.base import Behaviour, Catch
from suite.behaviours.failed_rollout import view

BEHAVIOUR = Behaviour(
    key="failed-rollout",
    title="Failed rollout and the way back",
    what=(
        "A Deployment is rolled, under traffic, to a version whose readiness never passes. The "
        "rollout stops within maxSurge and maxUnavailable while the old pods keep serving, the "
        "Deployment reports ProgressDeadlineExceeded once its progressDeadlineSeconds have "
        "passed, and an undo to the previous revision restores full capacity; no request fails."
    ),
    chart_caption=(
        "Top: requests through the Service by the version that answered; failed requests are "
        "crossed on the strip beneath. Bottom: the Ready pods of each ReplicaSet (the broken "
        "one never has any). Marks: the broken rollout, ProgressDeadlineExceeded, the undo, "
        "full capacity restored."
    ),
    matrix_test="test_failed_rollout_stops_within_its_bounds_and_undo_restores_capacity",
    headlines=(view.headline,),
    chart=view.chart,
    figure_words=view.FIGURE_WORDS,
    catches=(
        Catch("deployment-controller-off", parts.DEPLOYMENT_CONTROLLER),
        Catch("admission-readiness-stripped", parts.ADMISSION + r"readinessProbe"),
    ),
    variants=("kube-proxy-nftables",),
    on_registry_path=False,
)
