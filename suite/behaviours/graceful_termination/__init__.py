"""Graceful termination, side by side: the same rollout of two halves of one app under traffic,
one that drains (preStop, then SIGTERM lets requests finish) and one that exits at once."""

from suite import parts
from suite.behaviours.base import Behaviour, Catch
from suite.behaviours.graceful_termination import view

BEHAVIOUR = Behaviour(
    key="graceful-termination",
    title="Graceful termination, side by side",
    what=(
        "The same rolling update of the same app, twice at once: one half drains when told to "
        "stop (its preStop hook fails readiness and keeps serving while every node's service "
        "proxy catches up, then SIGTERM lets requests in flight finish), the other exits at once. "
        "The graceful half must lose no request; what the abrupt half lost is shown next to it."
    ),
    chart_caption=(
        "Requests through each half's Service by the version that answered, on one time axis; "
        "failed requests are crossed on the strip beneath each."
    ),
    matrix_test="test_graceful_pods_lose_no_request_in_a_rollout_and_abrupt_ones_are_shown",
    headlines=(view.headline,),
    chart=view.chart,
    figure_words=view.FIGURE_WORDS,
    catches=(
        Catch("service-routing-late", parts.KUBE_PROXY),
        Catch("admission-readiness-stripped", parts.ADMISSION + r"readinessProbe"),
    ),
    variants=("kube-proxy-nftables",),
    on_registry_path=False,
)
