"""getip: answers with the pod, IP and node that served the request (the load-balancing witness)."""

from __future__ import annotations

import flask

from workloads.common import answer, identity, new_app


def create_app() -> flask.Flask:
    """``GET /`` -> {"pod", "ip", "node", "version"}."""
    app = new_app("getip")

    @app.get("/")
    def index() -> flask.Response:
        ident = identity()
        return answer({"ip": ident.ip, "node": ident.node})

    return app
