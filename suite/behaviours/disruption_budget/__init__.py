"""Disruption budget and drain: a PodDisruptionBudget keeps a Deployment's Ready pods at its
minAvailable while a node is drained through the Eviction API, under traffic (incver on two
nodes; multi-node clusters only)."""

from suite import parts
from suite.behaviours.base import Behaviour, Catch
from suite.behaviours.disruption_budget import view

BEHAVIOUR = Behaviour(
    key="disruption-budget",
    title="Disruption budget and drain",
    what=(
        "A Deployment spread over two nodes has a PodDisruptionBudget (minAvailable 3 of 4). "
        "One node is cordoned and drained the way kubectl drain does it, one Eviction per pod: "
        "the budget refuses (429) what would take too many pods at once, Ready pods never fall "
        "below minAvailable, and the drain completes once replacements are Ready on the other "
        "node; traffic through the Service goes on the whole time."
    ),
    chart_caption=(
        "Top: requests through the Service by the node of the pod that answered; failed "
        "requests are crossed on the strip beneath. Bottom: Ready pods against the budget's "
        "minAvailable. Marks: the cordon, each accepted eviction, the node drained, all "
        "replicas back."
    ),
    matrix_test="test_a_drain_through_the_eviction_api_keeps_the_disruption_budget",
    headlines=(view.headline,),
    chart=view.chart,
    figure_words=view.FIGURE_WORDS,
    catches=(
        # The budget's status is never computed: every eviction is refused, the drain never ends.
        Catch("disruption-controller-off", parts.DISRUPTION_CONTROLLER, cluster="kind"),
    ),
    variants=(),
    on_registry_path=False,
)
