"""The project's URLs (the hook endpoint at ``/api/v1/hooks/``) plus the bare insert at ``/bare/hooks/``."""
from __future__ import annotations

from django.urls import path

from scheduler_project.urls import urlpatterns as project_urlpatterns

from . import bare

urlpatterns = [path("bare/hooks/<slug:slug>", bare.hook_insert), *project_urlpatterns]
