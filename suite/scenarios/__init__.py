"""The four behaviour scenarios (e2e: they need `--cluster`)."""
