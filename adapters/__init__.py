"""Agent adapters, one module each, looked up by the agent's ``adapter`` kind."""
from __future__ import annotations

from .base import Adapter, AdapterError, AgentRequest, ConfigField
from .echo import EchoAdapter
from .http import HttpAdapter
from .message import MessageAdapter
from .openai import OpenAIAdapter
from .python import PythonAdapter

_ADAPTERS: dict[str, type[Adapter]] = {
    adapter.kind: adapter
    for adapter in (EchoAdapter, HttpAdapter, OpenAIAdapter, PythonAdapter, MessageAdapter)
}


def adapter_for(kind: str) -> Adapter:
    try:
        return _ADAPTERS[kind]()
    except KeyError:
        raise AdapterError(f"no adapter for kind {kind!r}", transient=False, category="config") from None


__all__ = ["Adapter", "AdapterError", "AgentRequest", "ConfigField", "adapter_for"]
