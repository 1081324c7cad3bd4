"""Shared HTTP plumbing for the adapters that POST JSON (``http``, ``openai``, ``message``).

One request path and one error mapping, so every adapter answers the same way
to the same failure:

==========================================  =========  ================  ==============
failure                                     retry?     category          agent reached?
==========================================  =========  ================  ==============
connection refused, DNS, request not sent   transient  ``agent_error``   no
no connection within the timeout            transient  ``timeout``       no
503                                         transient  ``agent_error``   no
429                                         transient  ``capacity``      no
other 5xx                                   transient  ``agent_error``   maybe
connection dropped after the request        transient  ``agent_error``   maybe
no answer within the timeout                transient  ``timeout``       maybe
401, 403                                    permanent  ``unauthorized``  no
other 4xx, 3xx, TLS certificate             permanent  ``agent_error``   no
==========================================  =========  ================  ==============

A 429 or 5xx carrying ``Retry-After`` makes the retry wait at least that long.
"Maybe" means the request was sent whole: an agent that does not dedupe by
idempotency key may have acted, so such a run is not retried blindly.
urllib raises ``URLError`` only while connecting and sending; anything after
the request is out (``getresponse``, the body) comes as a bare ``OSError`` or
``HTTPException``, which is how the two are told apart.

Standard library only. Secrets come from environment variables named in the
config, and neither they nor the URL's path and query (a webhook URL is often a
secret itself) appear in error messages.
"""
from __future__ import annotations

import email.utils
import http.client
import json
import math
import os
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from .base import AdapterError, AgentRequest, config_error

MAX_RESPONSE_BYTES = 10 * 1024 * 1024
USER_AGENT = "tickwise/0.1"
_RESERVED_HEADERS = {"authorization", "idempotency-key", "content-type", "content-length"}


@dataclass(frozen=True)
class Reply:
    status: int
    body: str

    def output(self) -> Any:
        """The JSON body, or ``{"text": body}`` when the body is not JSON."""
        try:
            return json.loads(self.body, parse_constant=_refuse_constant) if self.body else {"text": ""}
        except ValueError:
            return {"text": self.body}


def _refuse_constant(name: str) -> Any:
    # NaN/Infinity parse in Python but cannot be stored in jsonb.
    raise ValueError(f"{name} is not JSON")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would follow a redirected POST as a GET without the body: the
    agent never receives the run, yet the call looks successful."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def post_json(url: str, payload: Any, *, headers: dict[str, str], timeout: float) -> Reply:
    """POST ``payload`` as JSON; a 2xx reply is returned, anything else raises AdapterError."""
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST", headers={
        "User-Agent": USER_AGENT, "Accept": "application/json", **headers,
        "Content-Type": "application/json",
    })
    host = _host(url)
    try:
        with _opener.open(request, timeout=timeout) as response:
            return Reply(response.status, _read(response, deadline=time.monotonic() + timeout, host=host))
    except urllib.error.HTTPError as error:
        raise status_error(error.code, _error_body(error), host=host,
                           retry_after=retry_after_seconds(error.headers.get("Retry-After"))) from None
    except urllib.error.URLError as error:
        raise _connection_error(error.reason, host=host, timeout=timeout, reached=False) from None
    except (OSError, http.client.HTTPException) as error:
        raise _connection_error(error, host=host, timeout=timeout, reached=True) from None
    except ValueError as error:
        # A header value http.client refuses (a newline or non-Latin-1 text,
        # usually in a token from the environment). Its message may quote the
        # value, so only the type is reported.
        raise config_error(f"request to {host} could not be sent ({type(error).__name__}): "
                           "check config['headers'] and the token variable") from None


def _read(response: http.client.HTTPResponse, *, deadline: float, host: str) -> str:
    # The socket timeout bounds each read, not the whole body: a server that
    # trickles bytes would otherwise hold the worker far past the timeout.
    chunks: list[bytes] = []
    size = 0
    while chunk := response.read1(65536):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise AdapterError(f"response from {host} is larger than {MAX_RESPONSE_BYTES} bytes", transient=False)
        if time.monotonic() > deadline:
            raise AdapterError(f"response from {host} not finished within the timeout", transient=True,
                               category="timeout", reached=True)
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def _error_body(error: urllib.error.HTTPError) -> str:
    try:
        return error.read(65536).decode("utf-8", errors="replace")
    except (OSError, http.client.HTTPException):
        return ""
    finally:
        error.close()


def status_error(status: int, body: str, *, host: str, retry_after: float | None = None) -> AdapterError:
    """Map a non-2xx status to an AdapterError that says whether a retry can help."""
    message = f"HTTP {status} from {host}" + (f": {detail}" if (detail := error_detail(body)) else "")
    if status == 429:
        return AdapterError(message, transient=True, category="capacity", retry_after=retry_after, reached=False)
    if status >= 500:
        # 503 is the agent saying it did not take the request; any other 5xx
        # may come after it acted (or from a gateway that passed it on).
        return AdapterError(message, transient=True, retry_after=retry_after, reached=status != 503)
    if status in (401, 403):
        return AdapterError(message, transient=False, category="unauthorized", reached=False)
    if 300 <= status < 400:
        return AdapterError(f"{message} (redirects are not followed; configure the final URL)", transient=False,
                            reached=False)
    return AdapterError(message, transient=False, reached=False)


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now: delay-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_detail(body: str, limit: int = 300) -> str:
    """The server's own error message when it sent one (``{"error": {"message": ...}}``,
    ``{"error": ...}``, ``{"detail": ...}``), else the start of the body."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:limit]
    if isinstance(data, dict):
        found = data.get("error") or data.get("detail") or data.get("message")
        if isinstance(found, dict):
            found = found.get("message") or found
        if found:
            return str(found)[:limit]
    return body.strip()[:limit]


def _connection_error(reason: object, *, host: str, timeout: float, reached: bool) -> AdapterError:
    """``reached``: whether the whole request had been sent when ``reason`` happened."""
    if isinstance(reason, TimeoutError):
        what = "no response from" if reached else "could not send the request to"
        return AdapterError(f"{what} {host} within {timeout:g}s", transient=True, category="timeout",
                            reached=reached)
    if isinstance(reason, ssl.SSLCertVerificationError):
        return AdapterError(f"TLS certificate of {host} rejected: {reason}", transient=False, reached=False)
    what = "connection to" if reached else "could not reach"
    suffix = " lost after the request was sent" if reached else ""
    return AdapterError(f"{what} {host}{suffix}: {reason}", transient=True, reached=reached)


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


# -- config helpers shared by the HTTP adapters ------------------------------------


def timeout_for(request: AgentRequest) -> float:
    """The run's timeout, shortened by ``config["timeout"]`` when that is smaller."""
    configured = request.config.get("timeout")
    return float(min(request.timeout_seconds, configured) if configured else request.timeout_seconds)


def env_secret(config: dict[str, Any], key: str, default: str | None = None) -> str:
    """The value of the environment variable whose NAME is ``config[key]``."""
    name = config.get(key, default)
    value = os.environ.get(name or "")
    if not value:
        raise config_error(f"environment variable {name} (named by config[{key!r}]) is not set")
    return value


def url_from(config: dict[str, Any]) -> str | None:
    """``config["url"]``, or the URL held in the environment variable named by ``config["url_env"]``."""
    if config.get("url_env"):
        url = env_secret(config, "url_env")
        check_url(url, "url_env")
        return url
    return config.get("url")


def request_headers(config: dict[str, Any], idempotency_key: str) -> dict[str, str]:
    """``config["headers"]``, the bearer token from ``token_env``, and the idempotency key."""
    headers = dict(config.get("headers") or {})
    if config.get("token_env"):
        headers["Authorization"] = f"Bearer {env_secret(config, 'token_env')}"
    headers["Idempotency-Key"] = idempotency_key
    return headers


def validate_http_config(config: dict[str, Any], *, url_required: bool) -> None:
    """Check ``url``/``url_env``, ``headers``, ``token_env`` and ``timeout``."""
    if not isinstance(config, dict):
        raise config_error("config must be a JSON object")
    if config.get("url") is not None:
        check_url(config["url"], "url")
    elif url_required and not config.get("url_env"):
        raise config_error("config['url'] is required (or config['url_env'] naming an environment variable)")
    for key in ("url_env", "token_env"):
        check_env_name(config, key)
    check_headers(config.get("headers"))
    check_timeout(config.get("timeout"))


def check_url(url: object, key: str) -> None:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise config_error(f"config[{key!r}] must be an http:// or https:// URL")


def check_env_name(config: dict[str, Any], key: str) -> None:
    name = config.get(key)
    if name is not None and (not isinstance(name, str) or not name or "=" in name):
        raise config_error(f"config[{key!r}] must be the name of an environment variable")


def check_headers(headers: object) -> None:
    if headers is None:
        return
    if not isinstance(headers, dict) or not all(_header_value_ok(v) for v in headers.values()):
        raise config_error("config['headers'] must be an object of single-line Latin-1 string values")
    reserved = sorted(name for name in headers if str(name).lower() in _RESERVED_HEADERS)
    if reserved:
        # Authorization in particular: the config is stored in the database,
        # secrets are not; name the variable in token_env instead.
        raise config_error(f"config['headers'] may not set {', '.join(reserved)}; "
                           "use config['token_env'] for a bearer token")


def _header_value_ok(value: object) -> bool:
    return isinstance(value, str) and value.isprintable() and all(ord(char) < 256 for char in value)


def check_timeout(timeout: object) -> None:
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
            or timeout <= 0:
        raise config_error("config['timeout'] must be a positive number of seconds")
