"""An alert is an episode: opened by its first raise, bumped by later ones, closed when resolved.

At most one episode per ``(kind, key)`` is open at a time, by a partial unique
constraint: two processes that raise the same alert at once record one
episode, and only the one that inserted it (or the one that wins the
cool-down's compare-and-set) sends it.
"""
from __future__ import annotations

from django.db import models
from django.db.models import Q


class AlertKind(models.TextChoices):
    AUTO_PAUSE = "auto_pause", "Schedule auto-paused"
    BREAKER_TRIP = "breaker_trip", "Breaker tripped"
    DLQ_GROWTH = "dlq_growth", "Dead-letter queue growing"
    HOUSEKEEPING_STALLED = "housekeeping_stalled", "Housekeeping stopped"


class Alert(models.Model):
    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    key = models.CharField(max_length=200, help_text="What the alert is about (schedule:42, dlq, pulse:…): "
                                                    "one open episode per kind and key.")
    title = models.CharField(max_length=200)
    detail = models.TextField(blank=True, help_text="The latest raise's detail.")
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, null=True, blank=True,
                                  related_name="alerts")
    opened_at = models.DateTimeField()
    last_raised_at = models.DateTimeField()
    raised_count = models.PositiveIntegerField(default=1, help_text="Raises in this episode, sent or not.")
    notified_at = models.DateTimeField(help_text="When the channels were last sent this episode.")
    notifications = models.PositiveIntegerField(default=1, help_text="Times this episode was sent "
                                                                     "(once, then once per cool-down).")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "key"], condition=Q(resolved_at__isnull=True),
                                    name="alert_one_open_episode"),
        ]
        indexes = [models.Index(fields=["-opened_at"], name="alert_recent")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.title}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class DeliveryState(models.TextChoices):
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class AlertDelivery(models.Model):
    """One send of one notification of an alert to one channel: saved as ``sending`` before the call."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    notification = models.PositiveIntegerField()
    channel = models.CharField(max_length=20)
    target = models.CharField(max_length=500, blank=True)
    state = models.CharField(max_length=10, choices=DeliveryState.choices, default=DeliveryState.SENDING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            # A redelivered task message never sends the same notification twice.
            models.UniqueConstraint(fields=["alert", "notification", "channel"], name="alert_delivery_once"),
        ]
        verbose_name_plural = "alert deliveries"

    def __str__(self) -> str:
        return f"{self.channel} #{self.notification} of alert {self.alert_id}: {self.state}"
