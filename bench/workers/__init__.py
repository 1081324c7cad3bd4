"""End-to-end fires per second with two workers, against raw Celery: ``python -m bench.workers``."""
