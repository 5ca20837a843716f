"""Unit tests of the plugin: no cluster, no network."""
