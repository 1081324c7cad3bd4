"""The one error the timing engine raises."""
from __future__ import annotations


class TimingError(ValueError):
    """A schedule definition or argument the engine cannot use.

    The message is one line and names what is wrong, so the model, the admin,
    the API and ``preview_schedule`` can show it as is.
    """
