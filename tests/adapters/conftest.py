"""Loopback HTTP servers for the adapter tests: real sockets, no client mocks.

``AgentServer`` answers every POST with a scripted reply (status, JSON or raw
body, delay, a trickled or dropped response, or a hang-up or stall before the
request body is read) and records each delivery, counting deliveries per
``Idempotency-Key`` and the TCP connections it accepted.
"""
from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from adapters import AgentRequest

TICK = datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
KEY = "sched-7-v3-2026-03-08T07:30:00Z"


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None  # JSON-encoded unless ``raw`` is given
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    trickle: float = 0.0  # seconds between body bytes
    drop: bool = False  # close the connection without answering
    # Act after the request headers, before reading the body: "close" hangs up,
    # "stall" stops reading until the server stops. The delivery is not recorded.
    before_body: str | None = None

    def payload(self) -> bytes:
        return self.raw if self.raw is not None else json.dumps(self.body).encode()


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or the raw text when it is not JSON


Responder = Callable[[Delivery], Reply]


class AgentServer:
    """A threaded HTTP server on 127.0.0.1 with a free port."""

    def __init__(self, default: Reply | Responder | None = None, *, tls: ssl.SSLContext | None = None) -> None:
        self.default: Reply | Responder = default or Reply(body={"ok": True})
        self.queued: deque[Reply] = deque()
        self.deliveries: list[Delivery] = []
        self.per_key: Counter[str] = Counter()
        self.release = threading.Event()  # ends every pending delay at shutdown
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _handler_for(self))
        self.scheme = "https" if tls else "http"
        self.certificate: Path | None = None  # the self-signed certificate, for a client to trust
        if tls:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self._httpd.server_address[1]}"

    def reply(self, status: int = 200, body: Any = None, **options: Any) -> None:
        """Answer the next delivery with this reply (queued in order), then the default.

        ``options``: ``raw`` (bytes body), ``headers``, ``delay``, ``trickle``, ``drop``.
        """
        self.queued.append(Reply(status, body, **options))

    def record(self, delivery: Delivery) -> Reply:
        with self._lock:
            self.deliveries.append(delivery)
            self.per_key[delivery.headers.get("idempotency-key", "")] += 1
            if self.queued:
                return self.queued.popleft()
        return self.default(delivery) if callable(self.default) else self.default

    def cut_short(self) -> Reply | None:
        """The next queued reply, taken before the body is read, when it acts there."""
        with self._lock:
            if self.queued and self.queued[0].before_body:
                return self.queued.popleft()
        return None

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        return len(self._httpd.accepted)

    @property
    def last(self) -> Delivery:
        return self.deliveries[-1]

    def start(self) -> AgentServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.hang_up()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.accepted: list[socket.socket] = []

    def process_request(self, request: Any, client_address: Any) -> None:
        self.accepted.append(request)
        super().process_request(request, client_address)

    def hang_up(self) -> None:
        """Close kept-alive connections too: a pooled client must not find a stopped server's
        handler still answering on a port a later server may be given."""
        for sock in self.accepted:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by its handler

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (the timeout tests) is expected, not a server fault."""


def _handler_for(server: AgentServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            early = server.cut_short()
            if early is not None:
                if early.before_body == "stall":
                    server.release.wait(60)
                self.close_connection = True  # unread body: the kernel answers with a reset
                return
            data = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            reply = server.record(Delivery(self.path, {k.lower(): v for k, v in self.headers.items()},
                                           _parse(data)))
            if reply.delay:
                server.release.wait(reply.delay)
            if reply.drop:
                self.close_connection = True
                return
            self._answer(reply)

        def _answer(self, reply: Reply) -> None:
            payload = reply.payload()
            self.send_response(reply.status)
            for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            chunks = [payload[i:i + 1] for i in range(len(payload))] if reply.trickle else [payload]
            for chunk in chunks:
                self.wfile.write(chunk)
                self.wfile.flush()
                if reply.trickle and server.release.wait(reply.trickle):
                    return

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _parse(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data


def chat_completion(delivery: Delivery) -> Reply:
    """An OpenAI-compatible answer: echoes the last user message and the history length."""
    messages = delivery.body["messages"]
    content = f"echo: {messages[-1]['content']} (after {len(messages) - 1} messages)"
    return Reply(body={
        "id": "chatcmpl-1", "object": "chat.completion", "model": delivery.body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    })


@pytest.fixture
def agent_server() -> Iterator[AgentServer]:
    server = AgentServer().start()
    yield server
    server.stop()


@pytest.fixture
def chat_server() -> Iterator[AgentServer]:
    server = AgentServer(chat_completion).start()
    yield server
    server.stop()


@pytest.fixture
def self_signed_server(tmp_path) -> Iterator[AgentServer]:
    """An HTTPS agent server whose certificate no client trusts."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = AgentServer(tls=context).start()
    server.certificate = cert
    yield server
    server.stop()


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nothing listens on: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/run"


@pytest.fixture
def unanswered_url() -> Iterator[str]:
    """A loopback URL whose listener never accepts and whose backlog is full: connecting times out."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        fillers = [socket.socket() for _ in range(3)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(address)
        yield f"http://127.0.0.1:{address[1]}/run"
        for filler in fillers:
            filler.close()


@pytest.fixture
def make_request() -> Callable[..., AgentRequest]:
    def make(config: dict[str, Any], **fields: Any) -> AgentRequest:
        defaults: dict[str, Any] = dict(
            run_id=42, agent="reporter", input="Summarise 2026-03-08", session_id="sess-1", tick_at=TICK,
            trigger="schedule", idempotency_key=KEY, attempt=1, timeout_seconds=30,
        )
        return AgentRequest(config=config, **{**defaults, **fields})
    return make
