"""The fire-time engine (``core.timing``) next to croniter's own timezone handling: ``python -m bench.timing``."""
