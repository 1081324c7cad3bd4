"""Tickwise's beat against django-celery-beat and celery-redbeat: ``python -m bench.beat [--quick]``."""
