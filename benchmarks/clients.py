"""The clients under test, each behind the same operations.

``call()`` is one non-streamed completion (returns the reply text), ``stream()`` yields the text
delta of each chunk the client hands to its caller, ``acall()`` and ``astream()`` are the same on
asyncio (``astream`` is used by the transport suite, ``transport_clients.py``). Every
client sends the same request to the same server through an ``httpx`` pool of the same size
(keep-alive reused), with the library's own defaults otherwise (retries included).

Client libraries are imported inside the factories only: a worker first imports what
``ClientSpec.imports`` names (the timed cold import), then builds the client.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from benchmarks.workload import MAX_CONNECTIONS, MAX_KEEPALIVE, Target

if TYPE_CHECKING:
    import httpx


class BenchClient(Protocol):
    def call(self) -> str: ...

    def stream(self) -> Iterator[str]: ...

    async def acall(self) -> str: ...

    def astream(self) -> AsyncIterator[str]: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class ClientSpec:
    """A client: how to import it (timed), the modules it needs, and how to build it."""

    key: str
    label: str
    imports: tuple[tuple[str, str], ...]
    requires: tuple[str, ...]
    factory: Callable[[Target], BenchClient] | None = None

    @property
    def import_only(self) -> bool:
        return self.factory is None

    def missing(self) -> list[str]:
        """The required modules that cannot be found (the client is then skipped)."""
        return [module for module in self.requires if not _importable(module)]

    def load(self) -> None:
        """Import what the client needs, as its user would (attributes too: some load lazily)."""
        for module, attribute in self.imports:
            loaded = importlib.import_module(module)
            if attribute:
                getattr(loaded, attribute)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def http_clients() -> tuple[httpx.Client, httpx.AsyncClient]:
    """A sync and an async httpx client with the pool every client gets."""
    import httpx

    limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_KEEPALIVE)
    return httpx.Client(limits=limits), httpx.AsyncClient(limits=limits)


# --------------------------------------------------------------------------- raw httpx (floor)


class RawHttpx:
    """The floor: ``post`` + ``json.loads``; a stream is ``iter_lines`` + ``json.loads``."""

    def __init__(self, target: Target) -> None:
        self.client, self.aclient = http_clients()
        self.url = target.url
        self.headers = {"Authorization": f"Bearer {target.api_key}"}
        self.body = {"model": target.model, "messages": target.messages(long=False)}
        self.stream_body = {
            "model": target.model,
            "messages": target.messages(long=True),
            "stream": True,
            "stream_options": {"include_usage": True},
        }

    def call(self) -> str:
        response = self.client.post(self.url, json=self.body, headers=self.headers)
        return str(json.loads(response.content)["choices"][0]["message"]["content"])

    def stream(self) -> Iterator[str]:
        with self.client.stream(
            "POST", self.url, json=self.stream_body, headers=self.headers
        ) as response:
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    choices = json.loads(line[6:])["choices"]
                    yield choices[0]["delta"].get("content") or "" if choices else ""

    async def acall(self) -> str:
        response = await self.aclient.post(self.url, json=self.body, headers=self.headers)
        return str(json.loads(response.content)["choices"][0]["message"]["content"])

    async def astream(self) -> AsyncIterator[str]:
        async with self.aclient.stream(
            "POST", self.url, json=self.stream_body, headers=self.headers
        ) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    choices = json.loads(line[6:])["choices"]
                    yield choices[0]["delta"].get("content") or "" if choices else ""

    def close(self) -> None:
        self.client.close()

    async def aclose(self) -> None:
        await self.aclient.aclose()


# --------------------------------------------------------------------------- openai SDK


class OpenAISDK:
    def __init__(self, target: Target) -> None:
        import openai

        http, ahttp = http_clients()
        key, url = target.api_key, target.base_url
        # openai 3 defaults to httpx2 but takes httpx clients too: every client uses httpx.
        self.client = openai.OpenAI(api_key=key, base_url=url, http_client=cast(Any, http))
        self.aclient = openai.AsyncOpenAI(api_key=key, base_url=url, http_client=cast(Any, ahttp))
        self.model = target.model
        self.messages: Any = target.messages(long=False)
        self.long: Any = target.messages(long=True)

    def call(self) -> str:
        answer = self.client.chat.completions.create(model=self.model, messages=self.messages)
        return answer.choices[0].message.content or ""

    def stream(self) -> Iterator[str]:
        with self.client.chat.completions.create(
            model=self.model,
            messages=self.long,
            stream=True,
            stream_options={"include_usage": True},
        ) as stream:
            for chunk in stream:
                yield chunk.choices[0].delta.content or "" if chunk.choices else ""

    async def acall(self) -> str:
        answer = await self.aclient.chat.completions.create(
            model=self.model, messages=self.messages
        )
        return answer.choices[0].message.content or ""

    async def astream(self) -> AsyncIterator[str]:
        stream = await self.aclient.chat.completions.create(
            model=self.model,
            messages=self.long,
            stream=True,
            stream_options={"include_usage": True},
        )
        async with stream:
            async for chunk in stream:
                yield chunk.choices[0].delta.content or "" if chunk.choices else ""

    def close(self) -> None:
        self.client.close()

    async def aclose(self) -> None:
        await self.aclient.close()


# --------------------------------------------------------------------------- our core


class CoreClient:
    def __init__(self, target: Target) -> None:
        from opensearch_llm import AsyncChatClient, ChatClient

        http, ahttp = http_clients()
        options = {"api_key": target.api_key, "base_url": target.base_url}
        self.client = ChatClient(http_client=http, **options)
        self.aclient = AsyncChatClient(http_client=ahttp, **options)
        self.http, self.ahttp = http, ahttp
        self.model = target.model
        self.messages: Any = target.messages(long=False)
        self.long: Any = target.messages(long=True)

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
        self.client.close()
        self.http.close()

    async def aclose(self) -> None:
        await self.aclient.aclose()
        await self.ahttp.aclose()


# --------------------------------------------------------------------------- LangChain


class LangChainClient:
    """Any LangChain chat model: ``invoke``, ``stream``, ``ainvoke`` on prebuilt messages."""

    def __init__(self, target: Target, model: Any, clients: tuple[Any, Any]) -> None:
        from langchain_core.messages import HumanMessage

        self.model = model
        self.http, self.ahttp = clients
        self.messages = [HumanMessage(content=target.short_prompt)]
        self.long = [HumanMessage(content=target.long_prompt)]

    def call(self) -> str:
        return str(self.model.invoke(self.messages).content)

    def stream(self) -> Iterator[str]:
        for chunk in self.model.stream(self.long):
            yield chunk.content

    async def acall(self) -> str:
        return str((await self.model.ainvoke(self.messages)).content)

    async def astream(self) -> AsyncIterator[str]:
        async for chunk in self.model.astream(self.long):
            yield chunk.content

    def close(self) -> None:
        self.http.close()

    async def aclose(self) -> None:
        await self.ahttp.aclose()


def chat_openai(target: Target) -> BenchClient:
    from langchain_openai import ChatOpenAI

    http, ahttp = http_clients()
    model = ChatOpenAI(
        model=target.model,
        api_key=target.api_key,  # type: ignore[arg-type]
        base_url=target.base_url,
        http_client=http,
        http_async_client=ahttp,
        stream_usage=True,
    )
    return LangChainClient(target, model, (http, ahttp))


def chat_opensearch_llm(target: Target) -> BenchClient:
    from langchain_opensearch_llm import ChatOpenSearchLLM

    http, ahttp = http_clients()
    model = ChatOpenSearchLLM(
        model=target.model,
        api_key=target.api_key,  # type: ignore[arg-type]
        base_url=target.base_url,
        http_client=http,
        http_async_client=ahttp,
    )
    return LangChainClient(target, model, (http, ahttp))


def langchain_floor(target: Target) -> BenchClient:
    from benchmarks.floor_langchain import FloorChatModel

    http, ahttp = http_clients()
    model = FloorChatModel(
        model_name=target.model,
        base_url=target.base_url,
        api_key=target.api_key,
        http_client=http,
        http_async_client=ahttp,
    )
    return LangChainClient(target, model, (http, ahttp))


# --------------------------------------------------------------------------- LlamaIndex


class LlamaIndexClient:
    """Any LlamaIndex LLM: ``chat``, ``stream_chat``, ``achat`` on prebuilt messages."""

    def __init__(self, target: Target, llm: Any, clients: tuple[Any, Any]) -> None:
        from llama_index.core.base.llms.types import ChatMessage

        self.llm = llm
        self.http, self.ahttp = clients
        self.messages = [ChatMessage(role="user", content=target.short_prompt)]
        self.long = [ChatMessage(role="user", content=target.long_prompt)]

    def call(self) -> str:
        return str(self.llm.chat(self.messages).message.content)

    def stream(self) -> Iterator[str]:
        for response in self.llm.stream_chat(self.long):
            yield response.delta or ""

    async def acall(self) -> str:
        return str((await self.llm.achat(self.messages)).message.content)

    async def astream(self) -> AsyncIterator[str]:
        async for response in await self.llm.astream_chat(self.long):
            yield response.delta or ""

    def close(self) -> None:
        self.http.close()

    async def aclose(self) -> None:
        await self.ahttp.aclose()


def openai_like(target: Target) -> BenchClient:
    from llama_index.llms.openai_like import OpenAILike  # type: ignore[import-untyped]

    http, ahttp = http_clients()
    llm = OpenAILike(
        model=target.model,
        api_key=target.api_key,
        api_base=target.base_url,
        is_chat_model=True,
        context_window=131072,
        http_client=http,
        async_http_client=ahttp,
        additional_kwargs={"stream_options": {"include_usage": True}},
    )
    return LlamaIndexClient(target, llm, (http, ahttp))


def opensearch_llm_li(target: Target) -> BenchClient:
    from llama_index_opensearch_llm import OpenSearchLLM

    http, ahttp = http_clients()
    llm = OpenSearchLLM(
        model=target.model,
        api_key=target.api_key,
        base_url=target.base_url,
        http_client=http,
        async_http_client=ahttp,
    )
    return LlamaIndexClient(target, llm, (http, ahttp))


def llamaindex_floor(target: Target) -> BenchClient:
    from benchmarks.floor_llamaindex import FloorLLM

    http, ahttp = http_clients()
    llm = FloorLLM(
        model=target.model,
        api_base=target.base_url,
        api_key=target.api_key,
        http_client=http,
        async_http_client=ahttp,
    )
    return LlamaIndexClient(target, llm, (http, ahttp))


# --------------------------------------------------------------------------- the registry

_LC_MESSAGES = ("langchain_core.messages", "HumanMessage")
_LI_MESSAGES = ("llama_index.core.base.llms.types", "ChatMessage")

CLIENTS: tuple[ClientSpec, ...] = (
    ClientSpec("httpx", "raw httpx", (("httpx", "Client"),), ("httpx",), RawHttpx),
    ClientSpec("openai", "openai SDK", (("openai", "OpenAI"),), ("httpx", "openai"), OpenAISDK),
    ClientSpec(
        "core",
        "ChatClient (core)",
        (("opensearch_llm", "ChatClient"),),
        ("opensearch_llm",),
        CoreClient,
    ),
    ClientSpec(
        "lc-floor",
        "LangChain floor",
        (("benchmarks.floor_langchain", "FloorChatModel"), _LC_MESSAGES),
        ("langchain_core",),
        langchain_floor,
    ),
    ClientSpec(
        "chatopenai",
        "ChatOpenAI",
        (("langchain_openai", "ChatOpenAI"), _LC_MESSAGES),
        ("langchain_openai",),
        chat_openai,
    ),
    ClientSpec(
        "lc-ours",
        "ChatOpenSearchLLM",
        (("langchain_opensearch_llm", "ChatOpenSearchLLM"), _LC_MESSAGES),
        ("langchain_core", "langchain_opensearch_llm"),
        chat_opensearch_llm,
    ),
    ClientSpec(
        "li-floor",
        "LlamaIndex floor",
        (("benchmarks.floor_llamaindex", "FloorLLM"), _LI_MESSAGES),
        ("llama_index.core",),
        llamaindex_floor,
    ),
    ClientSpec(
        "openailike",
        "OpenAILike",
        (("llama_index.llms.openai_like", "OpenAILike"), _LI_MESSAGES),
        ("llama_index.llms.openai_like",),
        openai_like,
    ),
    ClientSpec(
        "li-ours",
        "OpenSearchLLM",
        (("llama_index_opensearch_llm", "OpenSearchLLM"), _LI_MESSAGES),
        ("llama_index.core", "llama_index_opensearch_llm"),
        opensearch_llm_li,
    ),
    # The frameworks alone, for the import target (imported, never called).
    ClientSpec(
        "lc-framework",
        "langchain-core alone",
        (("langchain_core.language_models", "BaseChatModel"), _LC_MESSAGES),
        ("langchain_core",),
    ),
    ClientSpec(
        "li-framework",
        "llama-index-core alone",
        (("llama_index.core.llms", "LLM"), _LI_MESSAGES),
        ("llama_index.core",),
    ),
)

BY_KEY: dict[str, ClientSpec] = {spec.key: spec for spec in CLIENTS}
