"""Reads from the registry."""
from __future__ import annotations

from .models import Schedule


def schedule_lookup(ref: str) -> Schedule | None:
    """A live schedule by id or by ``agent/name``."""
    live = Schedule.objects.live().select_related("agent")
    if ref.isdigit():
        return live.filter(pk=int(ref)).first()
    agent, _, name = ref.partition("/")
    if not name:
        return None
    return live.filter(agent__name=agent, name=name).first()
