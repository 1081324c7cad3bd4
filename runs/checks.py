"""System checks for the runs app (ids are stable: tickwise.*)."""
from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register

from .services.signing import SigningSecretError, signer

HINT = ("Set TICKWISE_WEBHOOK_SECRET to whsec_ followed by base64 of 24 to 64 random bytes; until then "
        "every completion webhook attempt is recorded failed with this reason and retried.")


@register()
def check_webhook_secret_usable(app_configs, **kwargs):
    """A secret that is set but cannot sign is a mistake worth saying at every start."""
    secret = settings.TICKWISE.get("WEBHOOK_SIGNING_SECRET", "")
    return _problems(secret) if secret else []


@register(Tags.security, deploy=True)
def check_webhook_secret_set(app_configs, **kwargs):
    """Unset is fine for an install that posts no completion webhooks; ``check --deploy`` says it anyway."""
    return _problems(settings.TICKWISE.get("WEBHOOK_SIGNING_SECRET", ""))


def _problems(secret: str) -> list[Warning]:
    try:
        signer(secret)
    except SigningSecretError as error:
        return [Warning(f"Completion webhooks cannot be signed: {error}", hint=HINT, id="tickwise.W010")]
    return []
