"""The kube-alive workloads: small Flask apps that say which pod answered.

Each app is a module with ``create_app() -> flask.Flask``; ``python -m workloads <app>`` serves one
with gunicorn on port 8080 (see ``workloads.__main__``).
"""

APPS = ("getip", "healthcheck", "cpuhog", "incver", "prober", "frontend", "memhog")
