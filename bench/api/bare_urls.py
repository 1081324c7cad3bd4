"""The project's URLs (the API at ``/api/v1/``) plus the bare views at ``/bare/``."""
from __future__ import annotations

from django.urls import path

from scheduler_project.urls import urlpatterns as project_urlpatterns

from . import bare

urlpatterns = [
    *project_urlpatterns,
    path("bare/agents/<int:agent>/schedules", bare.schedule_list),
    path("bare/agents/<int:agent>/schedules/<int:schedule>", bare.schedule_detail),
    path("bare/agents/<int:agent>/schedules/<int:schedule>/trigger", bare.schedule_trigger),
]
