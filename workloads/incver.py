"""incver: answers with the version baked into its image (the rolling-update witness).

The version is ``APP_VERSION``, set from the image build argument ``VERSION``; v1 and v2 differ in
nothing else.
"""

from __future__ import annotations

import flask

from workloads.common import identity, new_app


def create_app() -> flask.Flask:
    """``GET /`` and ``GET /version`` -> {"version", "pod"}; ``/readyz`` and ``/healthz``."""
    app = new_app("incver")

    @app.get("/")
    @app.get("/version")
    def version() -> flask.Response:
        ident = identity()
        return flask.jsonify({"version": ident.version, "pod": ident.pod})

    return app
