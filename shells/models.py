"""What the entry points themselves must remember: the API's idempotency keys."""
from __future__ import annotations

from django.db import models


class IdempotencyState(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"


class IdempotencyRecord(models.Model):
    """The first answer to a POST with an ``Idempotency-Key``, kept 24 hours.

    One row per (caller, key), by constraint: two concurrent requests with the
    same key cannot both run; the second sees ``in_progress`` (409) or the
    stored answer.
    """

    user_id = models.BigIntegerField()
    workspace_id = models.BigIntegerField()
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    state = models.CharField(max_length=12, choices=IdempotencyState.choices, default=IdempotencyState.IN_PROGRESS)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    body = models.BinaryField(null=True, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user_id", "workspace_id", "key"],
                                               name="idempotency_one_per_caller_key")]
        indexes = [models.Index(fields=["expires_at"], name="idempotency_expiry_idx")]

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"
