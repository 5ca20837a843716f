"""Readiness gating: a pod that reports not-ready leaves the Service while it keeps running, and
comes back when ready, without a restart (healthcheck's POST /unready and /ready)."""

from suite import parts
from suite.behaviours.base import Behaviour, Catch
from suite.behaviours.readiness_gating import view

BEHAVIOUR = Behaviour(
    key="readiness-gating",
    title="Readiness gating",
    what=(
        "A pod whose readiness check fails is taken out of the Service while it keeps running, "
        "and put back once it passes again; it is never restarted (readiness is not liveness). "
        "One of two replicas is flipped not-ready under traffic, then ready again."
    ),
    chart_caption=(
        "Requests through the Service around the readiness flips, by the pod that answered; "
        "failed requests are crossed on the strip beneath."
    ),
    matrix_test="test_unready_pod_leaves_the_service_and_returns_without_a_restart",
    headlines=(view.headline,),
    chart=view.chart,
    figure_words=view.FIGURE_WORDS,
    catches=(
        Catch("endpointslice-controller-off", parts.ENDPOINTSLICE_CONTROLLER),
        Catch("service-routing-late", parts.KUBE_PROXY),
    ),
    variants=("kube-proxy-nftables",),
    on_registry_path=False,
)
