"""The REST API against a bare Django view doing the same work: ``python -m bench.api``."""
