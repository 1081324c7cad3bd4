"""System checks for deployment invariants (ids are stable: tickwise.*)."""
from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

DEVELOPMENT_KEY_PREFIX = "tickwise-insecure-"


@register(Tags.security, deploy=True)
def check_secret_key(app_configs, **kwargs):
    if settings.SECRET_KEY.startswith(DEVELOPMENT_KEY_PREFIX):
        return [Warning("SECRET_KEY is the development fallback.", hint="Set SECRET_KEY.", id="tickwise.W001")]
    return []


@register()
def check_celery_delivery(app_configs, **kwargs):
    """The exactly-once design relies on late acks and redelivery of lost work."""
    errors = []
    if not settings.CELERY_TASK_ACKS_LATE or not settings.CELERY_TASK_REJECT_ON_WORKER_LOST:
        errors.append(Error("CELERY_TASK_ACKS_LATE and CELERY_TASK_REJECT_ON_WORKER_LOST must be True.",
                            id="tickwise.E001"))
    if settings.CELERY_WORKER_PREFETCH_MULTIPLIER != 1:
        errors.append(Error("CELERY_WORKER_PREFETCH_MULTIPLIER must be 1.", id="tickwise.E002"))
    return errors


@register()
def check_library_internals(app_configs, **kwargs):
    """The private internals Tickwise uses are all still there (see ``core.internals``)."""
    from core.internals import VERIFIED, missing_internals

    checked = ", ".join(f"{name} {versions}" for name, versions in VERIFIED.items())
    return [Error(f"{name} is gone or changed", hint=f"Tickwise was verified with {checked}; see core/internals.py.",
                  id="tickwise.E003") for name in missing_internals()]
