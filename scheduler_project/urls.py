from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView

from shells.api import api
from shells.api.problems import Problem
from shells.metrics import metrics_view


@csrf_exempt  # every method gets the same 404 problem, a write without a CSRF cookie too
def api_disabled(request: HttpRequest, rest: str = "") -> HttpResponse:
    return Problem(404, "feature-disabled", "the API is turned off (TICKWISE_API_ENABLED=false)").response()


urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view),
    path("api/v1/", api.urls) if settings.TICKWISE["API_ENABLED"] else re_path(r"^api/(?P<rest>.*)$", api_disabled),
]
