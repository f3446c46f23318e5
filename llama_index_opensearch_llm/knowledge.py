"""knowledge-llm in LlamaIndex: a response synthesizer and a retriever that answers.

Both send the query and the retrieved passages to ``opensearch_llm``'s knowledge clients; the
core validates, signs, retries, parses the stream and raises typed errors. Neither needs an
LLM: the synthesizer hands LlamaIndex a ``MockLLM`` so that nothing falls back to
``Settings.llm`` (whose default is OpenAI).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from typing import Any, cast

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.response.schema import RESPONSE_TYPE
from llama_index.core.callbacks.base import CallbackManager
from llama_index.core.llms import LLM, MockLLM
from llama_index.core.prompts.mixin import PromptDictType
from llama_index.core.response_synthesizers.base import BaseSynthesizer
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
from llama_index.core.types import RESPONSE_TEXT_TYPE
from pydantic import SecretStr
from typing_extensions import Unpack

from opensearch_llm._adapters import (
    KNOWLEDGE_OPTION_NAMES,
    AsyncHttpClient,
    ClientCache,
    ConnectionOptions,
    SyncHttpClient,
    check_knowledge_settings,
    knowledge_passages,
)
from opensearch_llm.knowledge import (
    AsyncKnowledgeClient,
    AsyncKnowledgeStream,
    KnowledgeAuth,
    KnowledgeClient,
    KnowledgeParams,
    KnowledgeResult,
    KnowledgeStream,
)

__all__ = ["OpenSearchKnowledgeRetriever", "OpenSearchKnowledgeSynthesizer"]

#: The key of the knowledge-llm details in a ``Response``'s ``metadata``.
RESPONSE_METADATA_KEY = "opensearch_knowledge"
#: Metadata of the answer node that is for the caller, not for an LLM or an embedding.
_ANSWER_METADATA_KEYS = ["request_id", "latency", "model", "sources"]


class KnowledgeOptions(ConnectionOptions, total=False):
    """The knowledge-llm settings both LlamaIndex components take (keyword arguments).

    Besides these, the core clients' connection settings (``timeout``, ``max_retries``...).
    """

    #: The application (app group) name; default: none (required unless ``client`` is given).
    app: str | None
    #: The instance endpoint; default: ``OPENSEARCH_LLM_KNOWLEDGE_HOST``.
    host: str | None
    #: API key; default: ``OPENSEARCH_LLM_API_KEY``, then ``DASHSCOPE_API_KEY``.
    api_key: str | SecretStr | None
    #: ``"bearer"`` (the API key) or ``AccessKeyCredentials(id, secret)`` to sign requests.
    auth: KnowledgeAuth
    #: The LLM, e.g. ``qwen-plus``; default: the application's.
    model: str | None
    #: Moderation of the answer: ``none`` or ``loose``.
    csi_level: str | None
    #: Ready core clients to use instead of making them (never closed by the component).
    client: KnowledgeClient | None
    async_client: AsyncKnowledgeClient | None
    #: httpx clients for the core clients the component makes (never closed by it).
    http_client: SyncHttpClient
    async_http_client: AsyncHttpClient


class _Knowledge:
    """The core clients (given, or made on first use) and the request fields every call sends.

    Unless a ready client is given, the settings are checked when it is made; the key is looked
    up when a client is first made, so a missing key is reported on the first call (as chat).
    """

    def __init__(self, options: KnowledgeOptions) -> None:
        unknown = sorted(set(options) - set(KnowledgeOptions.__annotations__))
        if unknown:
            raise TypeError(f"Unknown knowledge-llm options: {', '.join(unknown)}")
        self.params: KnowledgeParams = {
            "model": options.get("model"),
            "csi_level": options.get("csi_level"),
        }
        self._client = options.get("client")
        self._async_client = options.get("async_client")
        self._http_client = options.get("http_client")
        self._async_http_client = options.get("async_http_client")
        # What the core clients take, as given (what is not given keeps the core's default).
        given: Mapping[str, Any] = options
        self._options: dict[str, Any] = {
            name: given[name] for name in (*KNOWLEDGE_OPTION_NAMES, "auth") if name in given
        }
        self._options["api_key"] = _secret(options.get("api_key"))
        self._clients: ClientCache[KnowledgeClient, AsyncKnowledgeClient] = ClientCache()
        if self._client is None and self._async_client is None:
            check_knowledge_settings(
                app=options.get("app"),
                host=options.get("host"),
                auth=options.get("auth", "bearer"),
                params=self.params,
            )

    def sync(self) -> KnowledgeClient:
        if self._client is not None:
            return self._client
        return self._clients.sync(
            lambda: KnowledgeClient(http_client=self._http_client, **self._options)
        )

    def async_(self) -> AsyncKnowledgeClient:
        if self._async_client is not None:
            return self._async_client
        return self._clients.async_(
            lambda: AsyncKnowledgeClient(http_client=self._async_http_client, **self._options)
        )

    def close(self) -> None:
        self._clients.close()

    async def aclose(self) -> None:
        await self._clients.aclose()

    def call_params(self, overrides: dict[str, Any]) -> KnowledgeParams:
        """The fixed fields, with the known ones of ``overrides`` (per-call keywords) on top."""
        known = {k: v for k, v in overrides.items() if k in KnowledgeParams.__annotations__}
        return cast(KnowledgeParams, {**self.params, **known})


def _secret(api_key: str | SecretStr | None) -> SecretStr | None:
    # Held as a SecretStr from the start, so that no repr or log of the component shows it.
    return SecretStr(api_key) if isinstance(api_key, str) else api_key


def _details(result: KnowledgeResult) -> dict[str, Any]:
    return {
        "request_id": result.request_id,
        "latency": result.latency,
        "model": result.model,
        "data": result.data,
    }


class _AnswerText(str):
    """The answer text, carrying its ``KnowledgeResult`` to ``_prepare_response_output``."""

    result: KnowledgeResult


def _answer_text(result: KnowledgeResult) -> _AnswerText:
    text = _AnswerText(result.answer)
    text.result = result
    return text


def _pieces(stream: KnowledgeStream) -> Generator[str, None, None]:
    with stream:
        yield from stream


async def _apieces(stream: AsyncKnowledgeStream) -> AsyncGenerator[str, None]:
    async with stream:
        async for piece in stream:
            yield piece


class OpenSearchKnowledgeSynthesizer(BaseSynthesizer):
    """A response synthesizer that asks knowledge-llm: the query and the nodes' text go in.

    Works in ``RetrieverQueryEngine(retriever, response_synthesizer=...)``; with
    ``streaming=True`` the engine returns a streaming response whose generator yields the
    answer's new text. ``Response.metadata["opensearch_knowledge"]`` holds ``request_id``,
    ``latency``, ``model`` and ``data`` (non-streamed responses). No LLM is needed: a
    ``MockLLM`` stands in unless you pass ``llm=``, so nothing falls back to OpenAI.

    Connection options (``timeout``, ``connect_timeout``, ``stream_idle_timeout``,
    ``stream_timeout``, ``max_retries``, ``default_headers``, ``max_response_bytes``,
    ``max_event_bytes``, ``max_connections``) go to ``opensearch_llm.KnowledgeClient``; or pass
    ready ``client=`` / ``async_client=`` instances. The settings (``KnowledgeOptions``) are
    checked at construction; a missing key is reported on the first call. ``close()`` /
    ``aclose()`` release the connection pools it made.

    Example::

        from llama_index.core.query_engine import RetrieverQueryEngine

        synthesizer = OpenSearchKnowledgeSynthesizer(app="my_app", streaming=True)
        engine = RetrieverQueryEngine(index.as_retriever(), response_synthesizer=synthesizer)
        engine.query("what is OpenSearch").print_response_stream()
    """

    def __init__(
        self,
        *,
        streaming: bool = False,
        llm: LLM | None = None,
        callback_manager: CallbackManager | None = None,
        **options: Unpack[KnowledgeOptions],
    ) -> None:
        self._knowledge = _Knowledge(options)
        super().__init__(
            llm=llm or MockLLM(), callback_manager=callback_manager, streaming=streaming
        )

    def close(self) -> None:
        """Close the sync connection pool it made (given clients are left open)."""
        self._knowledge.close()

    async def aclose(self) -> None:
        """Close this event loop's connection pool it made (given clients are left open)."""
        await self._knowledge.aclose()

    def _get_prompts(self) -> PromptDictType:
        return {}

    def _update_prompts(self, prompts_dict: PromptDictType) -> None:
        """knowledge-llm builds its prompt on the server: there is none to update."""

    def get_response(
        self, query_str: str, text_chunks: Sequence[str], **response_kwargs: Any
    ) -> RESPONSE_TEXT_TYPE:
        """The answer (a generator of its new text when streaming)."""
        params = self._knowledge.call_params(response_kwargs)
        client = self._knowledge.sync()
        if self._streaming:
            return _pieces(client.stream(query_str, knowledge_passages(text_chunks), **params))
        return _answer_text(client.answer(query_str, knowledge_passages(text_chunks), **params))

    async def aget_response(
        self, query_str: str, text_chunks: Sequence[str], **response_kwargs: Any
    ) -> RESPONSE_TEXT_TYPE:
        """The answer (an async generator of its new text when streaming)."""
        params = self._knowledge.call_params(response_kwargs)
        client = self._knowledge.async_()
        if self._streaming:
            return _apieces(client.stream(query_str, knowledge_passages(text_chunks), **params))
        return _answer_text(
            await client.answer(query_str, knowledge_passages(text_chunks), **params)
        )

    def _prepare_response_output(
        self, response_str: RESPONSE_TEXT_TYPE | None, source_nodes: list[NodeWithScore]
    ) -> RESPONSE_TYPE:
        if not isinstance(response_str, _AnswerText):
            return super()._prepare_response_output(response_str, source_nodes)
        response = super()._prepare_response_output(str(response_str), source_nodes)
        response.metadata = {
            **(response.metadata or {}),
            RESPONSE_METADATA_KEY: _details(response_str.result),
        }
        return response


def _answer_node(result: KnowledgeResult, sources: Sequence[NodeWithScore]) -> NodeWithScore:
    node = TextNode(
        text=result.answer,
        metadata={
            "request_id": result.request_id,
            "latency": result.latency,
            "model": result.model,
            "sources": [_source(source) for source in sources],
        },
        excluded_embed_metadata_keys=list(_ANSWER_METADATA_KEYS),
        excluded_llm_metadata_keys=list(_ANSWER_METADATA_KEYS),
    )
    return NodeWithScore(node=node, score=None)


def _source(source: NodeWithScore) -> dict[str, Any]:
    return {
        "node_id": source.node.node_id,
        "score": source.score,
        "text": source.node.get_content(metadata_mode=MetadataMode.NONE),
        "metadata": dict(source.node.metadata),
    }


class OpenSearchKnowledgeRetriever(BaseRetriever):
    """A retriever that returns knowledge-llm's answer as one node, with its sources.

    The inner ``retriever`` (any LlamaIndex retriever) finds the passages; their text (after
    any fixed ``content``) is sent with the query. The answer node's ``metadata`` holds
    ``request_id``, ``latency``, ``model`` and ``sources`` (node id, score, text and metadata
    of each passage), all kept out of what an LLM or an embedding model sees.

    Example::

        kb = OpenSearchKnowledgeRetriever(index.as_retriever(), app="my_app")
        answer = kb.retrieve("what is OpenSearch")[0]
        answer.node.text, answer.node.metadata["sources"]
    """

    def __init__(
        self,
        retriever: BaseRetriever | None = None,
        *,
        content: Sequence[str] | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
        **options: Unpack[KnowledgeOptions],
    ) -> None:
        self._inner = retriever
        self._content = list(content or ())
        self._knowledge = _Knowledge(options)
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def close(self) -> None:
        """Close the sync connection pool it made (given clients are left open)."""
        self._knowledge.close()

    async def aclose(self) -> None:
        """Close this event loop's connection pool it made (given clients are left open)."""
        await self._knowledge.aclose()

    def _passages(self, sources: Sequence[NodeWithScore]) -> list[str] | None:
        texts = (s.node.get_content(metadata_mode=MetadataMode.LLM) for s in sources)
        return knowledge_passages(self._content, texts)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        sources = self._inner.retrieve(query_bundle) if self._inner is not None else []
        result = self._knowledge.sync().answer(
            query_bundle.query_str, self._passages(sources), **self._knowledge.params
        )
        return [_answer_node(result, sources)]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        sources = await self._inner.aretrieve(query_bundle) if self._inner is not None else []
        result = await self._knowledge.async_().answer(
            query_bundle.query_str, self._passages(sources), **self._knowledge.params
        )
        return [_answer_node(result, sources)]
