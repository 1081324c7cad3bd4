"""Service errors as problems: what a write can be refused for, answered with its field or version."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError

from core.timing import TimingError
from runs.services.dlq import ReplayRefused
from runs.services.manual import RunRefused
from schedules.versioned import StaleVersion

from .problems import Problem, field_errors
from .versions import stale


@contextmanager
def saving() -> Iterator[None]:
    """Model validation → 422 with field errors; a stale version → 412; a refused run, a schedule
    that cannot be planned as stored, or a lost race on a name → 409."""
    try:
        yield
    except ValidationError as error:
        errors = error.message_dict if hasattr(error, "error_dict") else {NON_FIELD_ERRORS: error.messages}
        raise field_errors({("body" if field == NON_FIELD_ERRORS else field): messages
                            for field, messages in errors.items()}) from None
    except StaleVersion as error:
        raise stale(error.current) from None
    except (ReplayRefused, RunRefused) as error:
        raise Problem(409, "conflict", str(error)) from None
    except TimingError as error:
        # A definition saved before a rule that now refuses it (a zone taken off the allow-list):
        # the object's state is the problem, and a PATCH that fixes the field is the way out.
        raise Problem(409, "conflict", f"the schedule cannot be planned as stored: {error}; change it with PATCH") \
            from None
    except IntegrityError:
        raise Problem(409, "conflict", "another request changed this object at the same time; retry") from None
