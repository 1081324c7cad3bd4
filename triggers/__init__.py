"""What starts runs: the beat (its Celery scheduler and the firing of due ticks)."""
