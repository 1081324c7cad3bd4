"""The outbound delivery ledger: a run's outcome posted, signed, to the destinations it names.

One ``OutboundDelivery`` per ``(run, url)`` (``outbound_one_per_run_url``), created
in the transaction that ends the run, so an ended run's delivery is neither lost
nor doubled whichever worker ended it. Its state is its own: a run that
succeeded may have a delivery that is still retrying or is dead. Each attempt to
POST is an ``OutboundAttempt`` row (docs/events.md, "Outbound completion webhooks").
"""
from __future__ import annotations

from django.db import models
from django.db.models import Q


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (refused by the receiver)"
    DEAD = "dead", "Dead (attempts exhausted)"


class OutboundDelivery(models.Model):
    run = models.ForeignKey("runs.Run", on_delete=models.CASCADE, related_name="deliveries")
    url = models.URLField(max_length=500)
    webhook_id = models.CharField(max_length=40, unique=True,
                                  help_text="The message's webhook-id: one per delivery, the same on every retry.")
    event_type = models.CharField(max_length=30, help_text="run.<state>, as the run ended.")
    payload = models.JSONField(help_text="The body sent on every attempt, fixed when the run ended.")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True,
                                           help_text="A retry waits here, not in the broker; empty once settled.")
    claimed_until = models.DateTimeField(null=True, blank=True,
                                         help_text="An attempt in flight holds the delivery until then.")
    published_at = models.DateTimeField(null=True, blank=True, help_text="When the deliver message was sent.")
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "outbound deliveries"
        constraints = [models.UniqueConstraint(fields=["run", "url"], name="outbound_one_per_run_url")]
        indexes = [
            # The sweeper: pending deliveries by when they are due.
            models.Index(fields=["next_attempt_at"], name="outbound_due_idx", condition=Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"delivery {self.webhook_id} of run {self.run_id} ({self.status})"


class OutboundAttempt(models.Model):
    """One POST (or one attempt that could not POST: no secret, a worker lost mid-call)."""

    delivery = models.ForeignKey(OutboundDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="outbound_attempt_once")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"
