"""Shared HTTP plumbing for the adapters that POST JSON (``http``, ``openai``, ``message``).

One request path and one error mapping, so every adapter answers the same way
to the same failure. Requests go through this process's pooled ``httpx``
client (``client.py``): explicit timeouts, no redirects.

The mapping from httpx's typed errors and HTTP statuses to ``AdapterError``
(transient, reached, category, retry_after) is tabled in ``docs/adapters.md``
and tested in ``tests/adapters/test_reached.py``. In short: nothing that
failed before the request was written whole reached the agent (a cut-off
body is framed by ``Content-Length``, so a correct server never holds a
request it could act on); a failure after that may have (``reached=True``),
and then an agent that does not dedupe by idempotency key is not retried
blindly. 429, 503 and 408 are the server saying it did not take the request.

"Sent whole" is read from httpx's ``trace`` extension, not from the error's
type alone: httpcore swallows a failed write and goes on to read, in case the
server answered early, so a request cut off half-way surfaces as
``RemoteProtocolError`` or ``ReadError``, the same errors as an answer lost
after a complete request.

Secrets come from environment variables named in the config, and neither they
nor the URL's path and query (a webhook URL is often a secret itself) appear
in error messages.
"""
from __future__ import annotations

import email.utils
import json
import math
import os
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from .base import AdapterError, AgentRequest, ConfigField, config_error
from .client import CONNECT_SECONDS, POOL_SECONDS, http_client, request_timeout

MAX_RESPONSE_BYTES = 10 * 1024 * 1024
MAX_ERROR_BODY_BYTES = 65536
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


class Progress:
    """httpx ``trace`` callback: whether the whole request was handed to the socket.

    The ``trace`` extension is public httpx API; its event names come from
    httpcore (``http11.send_request_body.complete``, checked with httpcore
    1.0). Should they change, ``sent`` stays False and
    ``tests/adapters/test_reached.py`` fails on the dropped connection, which
    must count as reached.
    """

    def __init__(self) -> None:
        self.sent = False

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        if event.endswith(".send_request_body.complete"):
            self.sent = True


def post_json(url: str, payload: Any, *, headers: dict[str, str], timeout: float) -> Reply:
    """POST ``payload`` as JSON; a 2xx reply is returned, anything else raises AdapterError."""
    host = _host(url)
    wire = _wire_headers(headers, host=host)
    progress = Progress()
    try:
        with http_client().stream("POST", url, content=json.dumps(payload).encode(), headers=wire,
                                  timeout=request_timeout(timeout), extensions={"trace": progress}) as response:
            return _reply(response, host=host, deadline=time.monotonic() + timeout)
    except httpx.RequestError as error:
        raise transport_error(error, host=host, timeout=timeout, sent=progress.sent) from None
    except httpx.InvalidURL:
        raise config_error(f"the URL for {host} is not a valid URL") from None


def _wire_headers(headers: dict[str, str], *, host: str) -> dict[bytes, bytes]:
    wire = {"User-Agent": USER_AGENT, "Accept": "application/json", **headers, "Content-Type": "application/json"}
    try:
        return {name.encode("ascii"): _header_bytes(value) for name, value in wire.items()}
    except ValueError:
        # Usually a token from the environment with a newline or non-Latin-1
        # text. Checked before connecting, and the value is never quoted.
        raise config_error(f"request to {host} could not be sent (a header value is not single-line "
                           "Latin-1 text): check config['headers'] and the token variable") from None


def _header_bytes(value: str) -> bytes:
    encoded = value.encode("latin-1")
    if any(byte < 0x20 and byte != 0x09 or byte == 0x7F for byte in encoded):
        raise ValueError("control character in a header value")
    return encoded


def _reply(response: httpx.Response, *, host: str, deadline: float) -> Reply:
    if response.is_success:
        return Reply(response.status_code, _read(response, deadline=deadline, host=host))
    raise status_error(response.status_code, _error_body(response, deadline=deadline), host=host,
                       retry_after=retry_after_seconds(response.headers.get("Retry-After")),
                       redirect=_redirect_target(response))


def _read(response: httpx.Response, *, deadline: float, host: str) -> str:
    # The read timeout bounds each read, not the whole body: a server that
    # trickles bytes would otherwise hold the worker far past the timeout.
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise AdapterError(f"response from {host} is larger than {MAX_RESPONSE_BYTES} bytes", transient=False)
        if time.monotonic() > deadline:
            raise AdapterError(f"response from {host} not finished within the timeout", transient=True,
                               category="timeout", reached=True)
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def _error_body(response: httpx.Response, *, deadline: float) -> str:
    """The start of an error reply, for its message; whatever arrived if reading it fails."""
    chunks: list[bytes] = []
    try:
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            if sum(map(len, chunks)) >= MAX_ERROR_BODY_BYTES or time.monotonic() > deadline:
                break
    except httpx.RequestError:
        pass
    return b"".join(chunks)[:MAX_ERROR_BODY_BYTES].decode("utf-8", errors="replace")


def _redirect_target(response: httpx.Response) -> str | None:
    """Where a 3xx points: the origin, and how the path changed (a webhook path is often a secret)."""
    location = response.headers.get("Location")
    if not response.is_redirect or not location:
        return None
    try:
        target = response.request.url.join(location)
    except httpx.InvalidURL:
        return "an unreadable Location"
    return f"{target.scheme}://{target.netloc.decode('ascii')} ({_path_change(response.request.url.path, target.path)})"


def _path_change(before: str, after: str) -> str:
    if after == before:
        return "same path"
    if after.rstrip("/") == before.rstrip("/"):
        return "same path, trailing slash " + ("added" if after.endswith("/") else "removed")
    return "another path"


def status_error(status: int, body: str, *, host: str, retry_after: float | None = None,
                 redirect: str | None = None) -> AdapterError:
    """Map a non-2xx status to an AdapterError that says whether a retry can help."""
    message = f"HTTP {status} from {host}" + (f": {detail}" if (detail := error_detail(body)) else "")
    if status == 429:
        return AdapterError(message, transient=True, category="capacity", retry_after=retry_after, reached=False)
    if status >= 500 or status == 408:
        # 503 is the agent saying it did not take the request, 408 that it did
        # not receive all of it; any other 5xx may come after it acted (or from
        # a gateway that passed it on).
        return AdapterError(message, transient=True, retry_after=retry_after, reached=status not in (503, 408))
    if status in (401, 403):
        return AdapterError(message, transient=False, category="unauthorized", reached=False)
    if 300 <= status < 400:
        where = f"; it points to {redirect}" if redirect else ""
        return AdapterError(f"{message}; redirects are not followed{where}; configure the final URL",
                            transient=False, reached=False)
    return AdapterError(message, transient=False, reached=False)


def transport_error(error: httpx.RequestError, *, host: str, timeout: float, sent: bool) -> AdapterError:
    """Map httpx's typed errors. ``sent``: the whole request reached the socket (see ``Progress``)."""
    if isinstance(error, (httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ConnectError)):
        return _connect_error(error, host=host, timeout=timeout)
    if isinstance(error, (httpx.WriteTimeout, httpx.WriteError)):
        # Cut off mid-request: a server that frames the body by Content-Length
        # never holds a request it could act on.
        category = "timeout" if isinstance(error, httpx.WriteTimeout) else "agent_error"
        return AdapterError(f"could not send the request to {host} within {timeout:g}s: {_reason(error)}",
                            transient=True, category=category, reached=False)
    if isinstance(error, httpx.LocalProtocolError):
        # h11 refused our own request (a header); its message quotes the value.
        return config_error(f"request to {host} could not be sent (LocalProtocolError): "
                            "check config['headers'] and the token variable")
    if isinstance(error, httpx.DecodingError):
        return AdapterError(f"response from {host} could not be decoded: {_reason(error)}", transient=False,
                            reached=True)
    return _lost_error(error, host=host, timeout=timeout, sent=sent)


def _connect_error(error: httpx.RequestError, *, host: str, timeout: float) -> AdapterError:
    """No request left: nothing was written to any connection."""
    if isinstance(error, httpx.ConnectTimeout):
        return AdapterError(f"could not connect to {host} within {min(timeout, CONNECT_SECONDS):g}s",
                            transient=True, category="timeout", reached=False)
    if isinstance(error, httpx.PoolTimeout):
        return AdapterError(f"no free connection to {host} within {min(timeout, POOL_SECONDS):g}s",
                            transient=True, category="timeout", reached=False)
    if _caused_by(error, ssl.SSLCertVerificationError):
        return AdapterError(f"TLS certificate of {host} rejected: {_reason(error)}", transient=False, reached=False)
    return AdapterError(f"could not reach {host}: {_reason(error)}", transient=True, reached=False)


def _lost_error(error: httpx.RequestError, *, host: str, timeout: float, sent: bool) -> AdapterError:
    """A read-side failure: the agent may have acted only if the request had gone out whole."""
    if isinstance(error, httpx.TimeoutException):
        what = "no response from" if sent else "could not send the request to"
        return AdapterError(f"{what} {host} within {timeout:g}s", transient=True, category="timeout", reached=sent)
    if sent:
        return AdapterError(f"connection to {host} lost after the request was sent: {_reason(error)}",
                            transient=True, reached=True)
    return AdapterError(f"connection to {host} lost before the request was sent whole: {_reason(error)}",
                        transient=True, reached=False)


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    # httpx raises its own type "from" httpcore's, which is raised "from" the OSError.
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _reason(error: BaseException) -> str:
    return str(error) or type(error).__name__


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


WORKSPACE_HEADER = "Tickwise-Workspace"


def request_headers(config: dict[str, Any], idempotency_key: str,
                    workspace_id: int | None = None) -> dict[str, str]:
    """``config["headers"]``, the bearer token from ``token_env``, the idempotency key and the run's tenant."""
    headers = dict(config.get("headers") or {})
    if config.get("token_env"):
        headers["Authorization"] = f"Bearer {env_secret(config, 'token_env')}"
    headers["Idempotency-Key"] = idempotency_key
    if workspace_id is not None:
        headers[WORKSPACE_HEADER] = str(workspace_id)
    return headers


HTTP_CONFIG_FIELDS = (
    ConfigField("url", "url", "The endpoint runs are POSTed to (http:// or https://)."),
    ConfigField("url_env", "env", "Instead of url: the name of an environment variable holding the URL, "
                                  "for a URL that is itself a secret."),
    ConfigField("token_env", "env", "Name of an environment variable holding a bearer token, sent as "
                                    "Authorization: Bearer …; the token never enters the database."),
    ConfigField("headers", "object", 'Extra request headers as a JSON object ({"X-Team": "ops"}); no secrets, '
                                     "Authorization is refused."),
    ConfigField("timeout", "number", "Seconds to wait for the answer; the run's own timeout wins when shorter."),
)


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
