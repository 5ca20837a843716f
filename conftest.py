"""Registers the kube-alive pytest plugin for a checkout that is not installed; everything else
lives in the `suite` package.

Installed (`pip install -e .`), the plugin comes from its `pytest11` entry point, which is named
after the module, so this line then finds `suite.plugin` registered and does nothing.
"""

pytest_plugins = ["suite.plugin"]
