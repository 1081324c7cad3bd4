"""Tickwise's benchmarks, one package each, run from the repository root.

    .venv/bin/python -m bench.timing     the fire-time engine against croniter
    .venv/bin/python -m bench.workers    fires per second against raw Celery
    .venv/bin/python -m bench.beat       the beat against django-celery-beat and celery-redbeat

``bench.common`` holds what they share (their own stores, child processes,
medians); ``bench/README.md`` the method and the current figures.
"""
