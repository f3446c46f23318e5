"""Every public path behind one interface: build it, call it, stream it, find its pool, close it.

One class per entry point of ``matrix.PATHS``; each runs sync or async (``mode``) from the
same async test body. Sync calls block the test's event loop, which is fine: the emulator
runs in its own thread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from langchain_core.exceptions import ModelError
from langchain_core.messages import BaseMessageChunk
from llama_index.core.base.llms.types import ChatMessage, ChatResponse
from llama_index.core.schema import NodeWithScore, TextNode

from langchain_opensearch_llm import (
    ChatOpenSearchLLM,
    OpenSearchKnowledgeRetriever,
    OpenSearchKnowledgeRunnable,
)
from llama_index_opensearch_llm import (
    OpenSearchKnowledgeRetriever as LIKnowledgeRetriever,
)
from llama_index_opensearch_llm import (
    OpenSearchKnowledgeSynthesizer,
    OpenSearchLLM,
)
from opensearch_llm import (
    AsyncChatClient,
    AsyncKnowledgeClient,
    ChatClient,
    KnowledgeClient,
    StreamError,
)
from opensearch_llm.emulator import EmulatorServer
from tests.connections import busy_connections
from tests.reliability.support import (
    APP,
    CHAT_ANSWER,
    CHAT_MODEL,
    KEY,
    KNOWLEDGE_ANSWER,
    PASSAGE,
    QUESTION,
    fast_backoff,
)

MESSAGES = [{"role": "user", "content": QUESTION}]


@dataclass(frozen=True)
class Settings:
    """How a path's client is configured for one test."""

    max_retries: int = 1
    #: Read and stream-idle timeout, seconds.
    timeout: float = 5.0
    gateway: bool = False
    #: Sent with every request (e.g. ``X-Emulator-Fault``).
    headers: dict[str, str] | None = None


@dataclass
class Result:
    """What a successful call or stream gave the caller."""

    text: str
    finish_reason: str | None = None


class Surface:
    """One public entry point, in one mode (``sync`` or ``async``)."""

    key: ClassVar[str]
    dialect: ClassVar[str]
    #: The answer to ``QUESTION`` when nothing goes wrong.
    expected: ClassVar[str]
    #: A class every service error of this path also is (LangChain's ``ModelError``).
    framework_error: ClassVar[type[BaseException] | None] = None

    def __init__(
        self, server: EmulatorServer, mode: str, streamed: bool, settings: Settings
    ) -> None:
        self.server = server
        self.mode = mode
        self.streamed = streamed
        self.settings = settings
        self.obj = self.build()

    @property
    def sync(self) -> bool:
        """Whether this runs the sync methods."""
        return self.mode == "sync"

    def build(self) -> Any:
        """The public object under test."""
        raise NotImplementedError

    def core_client(self) -> Any:
        """The core client the object sends through (made now if it is made lazily)."""
        raise NotImplementedError

    async def call(self) -> Result:
        """One non-streamed call."""
        raise NotImplementedError

    async def stream(self, sink: list[str]) -> Result:
        """One streamed call; each piece of text goes to ``sink`` as it arrives."""
        raise NotImplementedError

    async def open_pieces(self) -> Any:
        """The streaming call's iterator (async iterator in async mode), without a ``with``."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release the object's connection pools."""
        client = self.core_client()
        if self.sync:
            client.close()
        else:
            await client.aclose()

    def prepare(self) -> None:
        """Make the core client now and make its retries fast."""
        fast_backoff(self.core_client())

    def busy_connections(self) -> list[Any]:
        """Connections checked out of the pool the object sends through."""
        return busy_connections(self.core_client())

    async def run(self, sink: list[str]) -> Result:
        """``stream`` or ``call``, as this instance was made for."""
        return await (self.stream(sink) if self.streamed else self.call())

    @staticmethod
    def partial_text(error: StreamError) -> str:
        """The text a ``StreamError`` kept."""
        raise NotImplementedError

    def client_options(self) -> dict[str, Any]:
        """Timeouts and retries, in the keyword names every path accepts."""
        return {
            "timeout": self.settings.timeout,
            "stream_idle_timeout": self.settings.timeout,
            "connect_timeout": 2.0,
            "max_retries": self.settings.max_retries,
            "default_headers": self.settings.headers,
        }


# --------------------------------------------------------------------------- chat


class ChatSurface(Surface):
    """Common parts of the three chat paths."""

    dialect = "chat"
    expected = CHAT_ANSWER

    @property
    def base_url(self) -> str:
        """Compatible mode, or the AI gateway."""
        server = self.server
        return server.gateway_base_url if self.settings.gateway else server.compatible_base_url

    @staticmethod
    def partial_text(error: StreamError) -> str:
        """The content of the partial ``chat.completion``."""
        return str(error.partial["choices"][0]["message"]["content"] or "")


def _delta_text(chunk: dict[str, Any]) -> str:
    choices = chunk.get("choices") or [{}]
    return str(choices[0].get("delta", {}).get("content") or "")


def _finish(completion: dict[str, Any]) -> tuple[str, str | None]:
    choice = completion["choices"][0]
    return str(choice["message"]["content"] or ""), choice["finish_reason"]


class CoreChat(ChatSurface):
    """``ChatClient`` / ``AsyncChatClient``."""

    key = "core-chat"

    def build(self) -> Any:
        """A core client on the served emulator."""
        cls = ChatClient if self.sync else AsyncChatClient
        return cls(KEY, base_url=self.base_url, **self.client_options())

    def core_client(self) -> Any:
        """The client itself."""
        return self.obj

    async def call(self) -> Result:
        """``create``."""
        if self.sync:
            return Result(*_finish(self.obj.create(model=CHAT_MODEL, messages=MESSAGES)))
        return Result(*_finish(await self.obj.create(model=CHAT_MODEL, messages=MESSAGES)))

    async def stream(self, sink: list[str]) -> Result:
        """``stream``, read to the end."""
        stream = self.obj.stream(model=CHAT_MODEL, messages=MESSAGES)
        if self.sync:
            with stream:
                sink.extend(_delta_text(chunk) for chunk in stream)
        else:
            async with stream:
                async for chunk in stream:
                    sink.append(_delta_text(chunk))
        return Result("".join(sink), _finish(stream.completion())[1])

    async def open_pieces(self) -> Any:
        """``iter(client.stream(...))`` / ``client.stream(...).__aiter__()``."""
        stream = self.obj.stream(model=CHAT_MODEL, messages=MESSAGES)
        return iter(stream) if self.sync else stream.__aiter__()


def _lc_finish(chunk: BaseMessageChunk, finish: str | None) -> str | None:
    return chunk.response_metadata.get("finish_reason") or finish


class LangChainChat(ChatSurface):
    """LangChain ``ChatOpenSearchLLM``."""

    key = "langchain-chat"
    framework_error = ModelError

    def build(self) -> Any:
        """The chat model on the served emulator."""
        return ChatOpenSearchLLM(
            model=CHAT_MODEL, api_key=KEY, base_url=self.base_url, **self.client_options()
        )

    def core_client(self) -> Any:
        """The model's core client of this mode."""
        return self.obj._sync_client() if self.sync else self.obj._async_client()

    async def call(self) -> Result:
        """``invoke`` / ``ainvoke``."""
        message = self.obj.invoke(QUESTION) if self.sync else await self.obj.ainvoke(QUESTION)
        return Result(message.content, message.response_metadata.get("finish_reason"))

    async def stream(self, sink: list[str]) -> Result:
        """``stream`` / ``astream``."""
        finish: str | None = None
        if self.sync:
            for chunk in self.obj.stream(QUESTION):
                sink.append(chunk.content)
                finish = _lc_finish(chunk, finish)
        else:
            async for chunk in self.obj.astream(QUESTION):
                sink.append(chunk.content)
                finish = _lc_finish(chunk, finish)
        return Result("".join(sink), finish)

    async def open_pieces(self) -> Any:
        """``stream(...)`` / ``astream(...)``."""
        return self.obj.stream(QUESTION) if self.sync else self.obj.astream(QUESTION)

    async def close(self) -> None:
        """The model's own ``close`` / ``aclose``."""
        await _close(self.obj, self.sync)


async def _close(obj: Any, sync: bool) -> None:
    if sync:
        obj.close()
    else:
        await obj.aclose()


def _li_messages() -> list[ChatMessage]:
    return [ChatMessage(role="user", content=QUESTION)]


def _li_take(response: ChatResponse, sink: list[str], finish: str | None) -> str | None:
    sink.append(response.delta or "")
    return response.additional_kwargs.get("finish_reason") or finish


class LlamaIndexChat(ChatSurface):
    """LlamaIndex ``OpenSearchLLM``."""

    key = "llama-index-chat"

    def build(self) -> Any:
        """The LLM on the served emulator."""
        return OpenSearchLLM(
            model=CHAT_MODEL, api_key=KEY, base_url=self.base_url, **self.client_options()
        )

    def core_client(self) -> Any:
        """The LLM's core client of this mode."""
        return self.obj._sync_client() if self.sync else self.obj._async_client()

    async def call(self) -> Result:
        """``chat`` / ``achat``."""
        if self.sync:
            response = self.obj.chat(_li_messages())
        else:
            response = await self.obj.achat(_li_messages())
        return Result(response.message.content or "", response.additional_kwargs["finish_reason"])

    async def stream(self, sink: list[str]) -> Result:
        """``stream_chat`` / ``astream_chat``."""
        finish: str | None = None
        if self.sync:
            for response in self.obj.stream_chat(_li_messages()):
                finish = _li_take(response, sink, finish)
        else:
            async for response in await self.obj.astream_chat(_li_messages()):
                finish = _li_take(response, sink, finish)
        return Result("".join(sink), finish)

    async def open_pieces(self) -> Any:
        """``stream_chat(...)`` / ``await astream_chat(...)``."""
        if self.sync:
            return self.obj.stream_chat(_li_messages())
        return await self.obj.astream_chat(_li_messages())

    async def close(self) -> None:
        """The LLM's own ``close`` / ``aclose``."""
        await _close(self.obj, self.sync)


# --------------------------------------------------------------------------- knowledge-llm


class KnowledgeSurface(Surface):
    """Common parts of the knowledge-llm paths."""

    dialect = "knowledge"
    expected = KNOWLEDGE_ANSWER

    def knowledge_options(self) -> dict[str, Any]:
        """Endpoint, application, key, timeouts and retries."""
        return {"host": self.server.origin, "app": APP, "api_key": KEY, **self.client_options()}

    @staticmethod
    def partial_text(error: StreamError) -> str:
        """The answer of the partial ``KnowledgeResult``."""
        return str(error.partial.answer)


async def _drain_sync(pieces: Iterator[str], sink: list[str]) -> Result:
    sink.extend(pieces)
    return Result("".join(sink))


async def _drain_async(pieces: AsyncIterator[str], sink: list[str]) -> Result:
    async for piece in pieces:
        sink.append(piece)
    return Result("".join(sink))


class CoreKnowledge(KnowledgeSurface):
    """``KnowledgeClient`` / ``AsyncKnowledgeClient``."""

    key = "core-knowledge"

    def build(self) -> Any:
        """A core client on the served emulator."""
        cls = KnowledgeClient if self.sync else AsyncKnowledgeClient
        return cls(**self.knowledge_options())

    def core_client(self) -> Any:
        """The client itself."""
        return self.obj

    async def call(self) -> Result:
        """``answer``."""
        if self.sync:
            return Result(self.obj.answer(QUESTION, [PASSAGE]).answer)
        return Result((await self.obj.answer(QUESTION, [PASSAGE])).answer)

    async def stream(self, sink: list[str]) -> Result:
        """``stream``, read to the end."""
        stream = self.obj.stream(QUESTION, [PASSAGE])
        if self.sync:
            with stream:
                return await _drain_sync(stream, sink)
        async with stream:
            return await _drain_async(stream, sink)

    async def open_pieces(self) -> Any:
        """``iter(client.stream(...))`` / ``client.stream(...).__aiter__()``."""
        stream = self.obj.stream(QUESTION, [PASSAGE])
        return iter(stream) if self.sync else stream.__aiter__()


class LangChainKnowledge(KnowledgeSurface):
    """Common parts of the LangChain knowledge-llm classes."""

    framework_error = ModelError

    def core_client(self) -> Any:
        """The object's core client of this mode."""
        return self.obj._sync_client() if self.sync else self.obj._async_client()

    async def close(self) -> None:
        """The object's own ``close`` / ``aclose``."""
        await _close(self.obj, self.sync)


class LangChainKnowledgeRetriever(LangChainKnowledge):
    """LangChain ``OpenSearchKnowledgeRetriever``."""

    key = "langchain-knowledge-retriever"

    def build(self) -> Any:
        """A retriever with one fixed passage."""
        return OpenSearchKnowledgeRetriever(content=[PASSAGE], **self.knowledge_options())

    async def call(self) -> Result:
        """``invoke`` / ``ainvoke``: the answer document."""
        documents = self.obj.invoke(QUESTION) if self.sync else await self.obj.ainvoke(QUESTION)
        return Result(documents[0].page_content)


RUNNABLE_INPUT = {"question": QUESTION, "documents": [PASSAGE]}


class LangChainKnowledgeRunnable(LangChainKnowledge):
    """LangChain ``OpenSearchKnowledgeRunnable``."""

    key = "langchain-knowledge-runnable"

    def build(self) -> Any:
        """The runnable; the passage comes with the input."""
        return OpenSearchKnowledgeRunnable(**self.knowledge_options())

    async def call(self) -> Result:
        """``invoke`` / ``ainvoke``."""
        if self.sync:
            return Result(self.obj.invoke(RUNNABLE_INPUT))
        return Result(await self.obj.ainvoke(RUNNABLE_INPUT))

    async def stream(self, sink: list[str]) -> Result:
        """``stream`` / ``astream``."""
        if self.sync:
            return await _drain_sync(self.obj.stream(RUNNABLE_INPUT), sink)
        return await _drain_async(self.obj.astream(RUNNABLE_INPUT), sink)

    async def open_pieces(self) -> Any:
        """``stream(...)`` / ``astream(...)``."""
        return self.obj.stream(RUNNABLE_INPUT) if self.sync else self.obj.astream(RUNNABLE_INPUT)


class LlamaIndexKnowledge(KnowledgeSurface):
    """Common parts of the LlamaIndex knowledge-llm classes."""

    def core_client(self) -> Any:
        """The object's core client of this mode."""
        knowledge = self.obj._knowledge
        return knowledge.sync() if self.sync else knowledge.async_()

    async def close(self) -> None:
        """The object's own ``close`` / ``aclose``."""
        await _close(self.obj, self.sync)


NODES = [NodeWithScore(node=TextNode(text=PASSAGE), score=1.0)]


class LlamaIndexKnowledgeSynthesizer(LlamaIndexKnowledge):
    """LlamaIndex ``OpenSearchKnowledgeSynthesizer``."""

    key = "llama-index-knowledge-synthesizer"

    def build(self) -> Any:
        """A synthesizer, streaming when this path streams."""
        return OpenSearchKnowledgeSynthesizer(streaming=self.streamed, **self.knowledge_options())

    async def call(self) -> Result:
        """``synthesize`` / ``asynthesize``."""
        if self.sync:
            return Result(str(self.obj.synthesize(QUESTION, nodes=NODES).response))
        return Result(str((await self.obj.asynthesize(QUESTION, nodes=NODES)).response))

    async def stream(self, sink: list[str]) -> Result:
        """The streaming response's generator, read to the end."""
        if self.sync:
            return await _drain_sync(self.obj.synthesize(QUESTION, nodes=NODES).response_gen, sink)
        return await _drain_async(await self.open_pieces(), sink)

    async def open_pieces(self) -> Any:
        """The streaming response's ``response_gen`` / ``async_response_gen()``."""
        if self.sync:
            return self.obj.synthesize(QUESTION, nodes=NODES).response_gen
        return (await self.obj.asynthesize(QUESTION, nodes=NODES)).async_response_gen()


class LlamaIndexKnowledgeRetriever(LlamaIndexKnowledge):
    """LlamaIndex ``OpenSearchKnowledgeRetriever``."""

    key = "llama-index-knowledge-retriever"

    def build(self) -> Any:
        """A retriever with one fixed passage and no inner retriever."""
        return LIKnowledgeRetriever(content=[PASSAGE], **self.knowledge_options())

    async def call(self) -> Result:
        """``retrieve`` / ``aretrieve``: the answer node."""
        nodes = self.obj.retrieve(QUESTION) if self.sync else await self.obj.aretrieve(QUESTION)
        return Result(nodes[0].node.get_content())


SURFACES: dict[str, type[Surface]] = {
    cls.key: cls
    for cls in (
        CoreChat,
        LangChainChat,
        LlamaIndexChat,
        CoreKnowledge,
        LangChainKnowledgeRetriever,
        LangChainKnowledgeRunnable,
        LlamaIndexKnowledgeSynthesizer,
        LlamaIndexKnowledgeRetriever,
    )
}


async def open_surface(
    key: str, server: EmulatorServer, mode: str, streamed: bool, settings: Settings
) -> Surface:
    """A path ready to call: built, its core client made, its retries fast."""
    surface = SURFACES[key](server, mode, streamed, settings)
    surface.prepare()
    return surface
