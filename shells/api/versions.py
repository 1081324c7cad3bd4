"""Optimistic concurrency over HTTP: a strong ``ETag`` per version, ``If-Match`` on every write.

A write without ``If-Match`` is refused (428): it would silently overwrite
whatever changed since the client read. A stale one is refused (412) with
the current version in the problem, so the client can re-read and retry. The
write itself is conditional on the version in the database (see the
services' ``expected_version``), so there is no check-then-write race here.
"""
from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified

from .problems import Problem

_TAG = re.compile(r'^\s*"(\d{1,10})"\s*$')


def etag(version: int) -> str:
    return f'"{version}"'


def if_match(request: HttpRequest) -> int:
    """The version the client's write was made on; 428 without one, 412 when it cannot be ours."""
    header = request.headers.get("If-Match")
    if header is None:
        raise Problem(428, "precondition-required", 'send If-Match: "<version>" from the ETag you read')
    match = _TAG.match(header)
    if match is None:
        raise Problem(412, "version-mismatch", f'If-Match must be one strong ETag such as "3", got {header!r}')
    return int(match.group(1))


def stale(current: int) -> Problem:
    return Problem(412, "version-mismatch", f"the object is at version {current}; re-read it and retry",
                   current_version=current)


def not_modified(request: HttpRequest, version: int) -> HttpResponse | None:
    """A 304 when the client's ``If-None-Match`` names the current version."""
    header = request.headers.get("If-None-Match", "")
    tags = {tag.strip() for tag in header.split(",")}
    if etag(version) in tags or "*" in tags:
        response = HttpResponseNotModified()
        response["ETag"] = etag(version)
        return response
    return None
