"""Recorded-looking runs for the report tests (made in code, so they stay small and honest)."""
