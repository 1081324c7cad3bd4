"""Alerts: one record per episode of trouble (an auto-pause, a tripped breaker, a growing
dead-letter queue, stalled housekeeping), raised once per cool-down and sent to the
configured channels after commit."""
