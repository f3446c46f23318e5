"""The clients of the transport suite: raw aiohttp (its floor), ours on their default transport,
and the references of ``clients.py`` as they are there.

Ours are built the way a user builds them, with no HTTP client injected, so the suite measures
whatever transport the packages choose by default (``AsyncChatClient``'s own pool, the adapters'
own clients). Raw httpx, the openai SDK, ChatOpenAI and OpenAILike are the ``clients.py``
clients: an injected ``httpx`` pool of 256 connections (64 kept alive), their defaults otherwise.
Raw aiohttp: one ``aiohttp.ClientSession`` with ``TCPConnector(limit=256)``, ``session.post``
+ ``json.loads``; a stream reads lines and ``json.loads`` each ``data:`` payload.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from benchmarks.clients import (
    BY_KEY,
    BenchClient,
    ClientSpec,
    LangChainClient,
    LlamaIndexClient,
)
from benchmarks.workload import MAX_CONNECTIONS, Target

if TYPE_CHECKING:
    import aiohttp

#: Measurements: non-streamed calls at each concurrency level, concurrent streams, and the
#: time to first chunk through the TLS proxy (sync and/or async).
CALLS, STREAMS, TTFC = "acalls", "astreams", "ttfc"


@dataclass(frozen=True)
class TransportSpec(ClientSpec):
    """A client of the transport suite and what it takes part in."""

    calls: bool = True
    streams: bool = False
    ttfc: tuple[str, ...] = ()

    def kinds(self) -> list[tuple[str, dict[str, Any]]]:
        """(kind, parameters) of every measurement, levels excluded (``calls`` has one each)."""
        jobs: list[tuple[str, dict[str, Any]]] = []
        if self.streams:
            jobs.append((STREAMS, {}))
        jobs += [(TTFC, {"mode": mode}) for mode in self.ttfc]
        return jobs


class RawAiohttp:
    """The floor of async figures: ``session.post`` + ``json.loads``; streams read lines."""

    def __init__(self, target: Target) -> None:
        self.url = target.url
        self.headers = {"Authorization": f"Bearer {target.api_key}"}
        self.body = {"model": target.model, "messages": target.messages(long=False)}
        self.stream_body = {
            "model": target.model,
            "messages": target.messages(long=True),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        self.session: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        # Made in the running event loop, on first use (aiohttp's pool belongs to one loop).
        if self.session is None:
            import aiohttp

            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS)
            )
        return self.session

    async def acall(self) -> str:
        async with self._session().post(self.url, json=self.body, headers=self.headers) as reply:
            return str(json.loads(await reply.read())["choices"][0]["message"]["content"])

    async def astream(self) -> AsyncIterator[str]:
        async with self._session().post(
            self.url, json=self.stream_body, headers=self.headers
        ) as response:
            async for line in response.content:
                if line.startswith(b"data: ") and not line.startswith(b"data: [DONE]"):
                    choices = json.loads(line[6:])["choices"]
                    yield choices[0]["delta"].get("content") or "" if choices else ""

    def call(self) -> str:
        raise NotImplementedError("raw aiohttp is async only")

    def stream(self) -> Iterator[str]:
        raise NotImplementedError("raw aiohttp is async only")

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()


class CoreDefault:
    """``ChatClient`` / ``AsyncChatClient`` with nothing injected (each made on first use)."""

    def __init__(self, target: Target) -> None:
        self.options = {"api_key": target.api_key, "base_url": target.base_url}
        self.model = target.model
        self.messages: Any = target.messages(long=False)
        self.long: Any = target.messages(long=True)

    @functools.cached_property
    def client(self) -> Any:
        from opensearch_llm import ChatClient

        return ChatClient(**self.options)

    @functools.cached_property
    def aclient(self) -> Any:
        from opensearch_llm import AsyncChatClient

        return AsyncChatClient(**self.options)

    def call(self) -> str:
        answer = self.client.create(model=self.model, messages=self.messages)
        return str(answer["choices"][0]["message"]["content"])

    def stream(self) -> Iterator[str]:
        with self.client.stream(model=self.model, messages=self.long) as stream:
            for chunk in stream:
                choices = chunk["choices"]
                yield choices[0]["delta"].get("content") or "" if choices else ""

    async def acall(self) -> str:
        answer = await self.aclient.create(model=self.model, messages=self.messages)
        return str(answer["choices"][0]["message"]["content"])

    async def astream(self) -> AsyncIterator[str]:
        async with self.aclient.stream(model=self.model, messages=self.long) as stream:
            async for chunk in stream:
                choices = chunk["choices"]
                yield choices[0]["delta"].get("content") or "" if choices else ""

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()

    async def aclose(self) -> None:
        if "aclient" in self.__dict__:
            await self.aclient.aclose()


class OwnPools:
    """Closes a model that made its own connection pools (``close`` / ``aclose``)."""

    model: Any

    def close(self) -> None:
        self.model.close()

    async def aclose(self) -> None:
        await self.model.aclose()


class LangChainDefault(OwnPools, LangChainClient):
    pass


class LlamaIndexDefault(OwnPools, LlamaIndexClient):
    @property
    def model(self) -> Any:
        return self.llm


def chat_opensearch_llm_default(target: Target) -> BenchClient:
    from langchain_opensearch_llm import ChatOpenSearchLLM

    model = ChatOpenSearchLLM(
        model=target.model,
        api_key=target.api_key,  # type: ignore[arg-type]
        base_url=target.base_url,
    )
    return LangChainDefault(target, model, (None, None))


def opensearch_llm_li_default(target: Target) -> BenchClient:
    from llama_index_opensearch_llm import OpenSearchLLM

    llm = OpenSearchLLM(model=target.model, api_key=target.api_key, base_url=target.base_url)
    return LlamaIndexDefault(target, llm, (None, None))


def _reference(key: str, **suites: Any) -> TransportSpec:
    spec = BY_KEY[key]
    return TransportSpec(spec.key, spec.label, spec.imports, spec.requires, spec.factory, **suites)


BOTH = ("sync", "async")
_LC_MESSAGES = ("langchain_core.messages", "HumanMessage")
_LI_MESSAGES = ("llama_index.core.base.llms.types", "ChatMessage")

TRANSPORT_CLIENTS: tuple[TransportSpec, ...] = (
    TransportSpec(
        "aiohttp",
        "raw aiohttp",
        (("aiohttp", "ClientSession"),),
        ("aiohttp",),
        RawAiohttp,
        streams=True,
        ttfc=("async",),
    ),
    _reference("httpx", streams=True, ttfc=BOTH),
    TransportSpec(
        "core",
        "ChatClient (core)",
        (("opensearch_llm", "AsyncChatClient"),),
        ("opensearch_llm",),
        CoreDefault,
        streams=True,
        ttfc=BOTH,
    ),
    TransportSpec(
        "lc-ours",
        "ChatOpenSearchLLM",
        (("langchain_opensearch_llm", "ChatOpenSearchLLM"), _LC_MESSAGES),
        ("langchain_core", "langchain_opensearch_llm"),
        chat_opensearch_llm_default,
        ttfc=BOTH,
    ),
    TransportSpec(
        "li-ours",
        "OpenSearchLLM",
        (("llama_index_opensearch_llm", "OpenSearchLLM"), _LI_MESSAGES),
        ("llama_index.core", "llama_index_opensearch_llm"),
        opensearch_llm_li_default,
        ttfc=BOTH,
    ),
    _reference("chatopenai", ttfc=BOTH),
    _reference("openailike", ttfc=BOTH),
    _reference("openai"),
)

TRANSPORT_BY_KEY: dict[str, TransportSpec] = {spec.key: spec for spec in TRANSPORT_CLIENTS}
#: The floor of every async figure of the suite.
AIOHTTP_FLOOR = "aiohttp"
