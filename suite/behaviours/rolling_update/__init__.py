"""Rolling update: a Deployment moves v1 to v2 with zero failed requests, inside maxSurge and
maxUnavailable (incver)."""

from suite import parts
from suite.behaviours.base import Behaviour, Catch
from suite.behaviours.rolling_update import view

BEHAVIOUR = Behaviour(
    key="rolling-update",
    title="Rolling update",
    what=(
        "A new version replaces the old one pod by pod under continuous traffic, without a "
        "single failed request, never running more pods than allowed (maxSurge) nor fewer ready "
        "ones than required (maxUnavailable)."
    ),
    chart_caption=(
        "Top: requests through the Service by the version that answered; failed requests are "
        "crossed on the strip. Bottom: pods against the rolling-update bounds."
    ),
    matrix_test="test_rolling_update_replaces_every_pod_without_a_failed_request",
    headlines=(view.headline,),
    chart=view.chart,
    more_charts=view.more_charts,
    figure_words=view.FIGURE_WORDS,
    catches=(
        Catch("service-routing-late", parts.KUBE_PROXY),
        Catch("deployment-controller-off", parts.DEPLOYMENT_CONTROLLER),
        Catch("admission-readiness-stripped", parts.ADMISSION + r"readinessProbe"),
    ),
    variants=("kube-proxy-nftables",),
    on_registry_path=True,
)
