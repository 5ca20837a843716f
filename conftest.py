"""Registers the kube-alive pytest plugin; everything else lives in the `suite` package."""

pytest_plugins = ["suite.plugin"]
