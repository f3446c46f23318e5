"""knowledge-llm in LlamaIndex: a response synthesizer and a retriever that answers.

Both send the query and the retrieved passages to ``opensearch_llm``'s knowledge clients; the
core validates, signs, retries, parses the stream and raises typed errors. Neither needs an
LLM: the synthesizer hands LlamaIndex a ``MockLLM`` so that nothing falls back to
``Settings.llm`` (whose default is OpenAI).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Sequence
from typing import Any, cast

import httpx
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.response.schema import RESPONSE_TYPE
from llama_index.core.callbacks.base import CallbackManager
from llama_index.core.llms import LLM, MockLLM
from llama_index.core.prompts.mixin import PromptDictType
from llama_index.core.response_synthesizers.base import BaseSynthesizer
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
from llama_index.core.types import RESPONSE_TEXT_TYPE
from pydantic import SecretStr

from opensearch_llm.knowledge import (
    AsyncKnowledgeClient,
    AsyncKnowledgeStream,
    KnowledgeAuth,
    KnowledgeClient,
    KnowledgeClientCache,
    KnowledgeParams,
    KnowledgeResult,
    KnowledgeStream,
)

__all__ = ["OpenSearchKnowledgeRetriever", "OpenSearchKnowledgeSynthesizer"]

#: The key of the knowledge-llm details in a ``Response``'s ``metadata``.
RESPONSE_METADATA_KEY = "opensearch_knowledge"
#: Metadata of the answer node that is for the caller, not for an LLM or an embedding.
_ANSWER_METADATA_KEYS = ["request_id", "latency", "model", "sources"]


class _Knowledge:
    """The core clients (given, or made from options) and the request fields every call sends."""

    def __init__(
        self,
        client: KnowledgeClient | None,
        async_client: AsyncKnowledgeClient | None,
        http_client: httpx.Client | None,
        async_http_client: httpx.AsyncClient | None,
        params: KnowledgeParams,
        options: dict[str, Any],
    ) -> None:
        self.params = params
        self._options = options
        self._async_http_client = async_http_client
        self._cache = KnowledgeClientCache()
        # Made now so that a bad app, host or key fails here, not at the first query.
        self._client = client or KnowledgeClient(http_client=http_client, **options)
        self._async_client = async_client

    def sync(self) -> KnowledgeClient:
        return self._client

    def async_(self) -> AsyncKnowledgeClient:
        if self._async_client is not None:
            return self._async_client
        return self._cache.async_(
            lambda: AsyncKnowledgeClient(http_client=self._async_http_client, **self._options)
        )

    def call_params(self, overrides: dict[str, Any]) -> KnowledgeParams:
        """The fixed fields, with the known ones of ``overrides`` (per-call keywords) on top."""
        known = {k: v for k, v in overrides.items() if k in KnowledgeParams.__annotations__}
        return cast(KnowledgeParams, {**self.params, **known})


def _knowledge(
    *,
    app: str | None,
    host: str | None,
    api_key: str | SecretStr | None,
    auth: KnowledgeAuth,
    model: str | None,
    csi_level: str | None,
    client: KnowledgeClient | None,
    async_client: AsyncKnowledgeClient | None,
    http_client: httpx.Client | None,
    async_http_client: httpx.AsyncClient | None,
    client_options: dict[str, Any],
) -> _Knowledge:
    options = {"api_key": api_key, "host": host, "app": app, "auth": auth, **client_options}
    params: KnowledgeParams = {"model": model, "csi_level": csi_level}
    return _Knowledge(client, async_client, http_client, async_http_client, params, options)


def _passages(texts: Sequence[str]) -> list[str] | None:
    kept = [text for text in texts if text.strip()]
    return kept or None


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
    ``max_retries``, ``default_headers``) go to ``opensearch_llm.KnowledgeClient``; or pass
    ready ``client=`` / ``async_client=`` instances.

    Example::

        from llama_index.core.query_engine import RetrieverQueryEngine

        synthesizer = OpenSearchKnowledgeSynthesizer(app="my_app", streaming=True)
        engine = RetrieverQueryEngine(index.as_retriever(), response_synthesizer=synthesizer)
        engine.query("what is OpenSearch").print_response_stream()
    """

    def __init__(
        self,
        *,
        app: str | None = None,
        host: str | None = None,
        api_key: str | SecretStr | None = None,
        auth: KnowledgeAuth = "bearer",
        model: str | None = None,
        csi_level: str | None = None,
        streaming: bool = False,
        client: KnowledgeClient | None = None,
        async_client: AsyncKnowledgeClient | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        llm: LLM | None = None,
        callback_manager: CallbackManager | None = None,
        **client_options: Any,
    ) -> None:
        self._knowledge = _knowledge(
            app=app,
            host=host,
            api_key=api_key,
            auth=auth,
            model=model,
            csi_level=csi_level,
            client=client,
            async_client=async_client,
            http_client=http_client,
            async_http_client=async_http_client,
            client_options=client_options,
        )
        super().__init__(
            llm=llm or MockLLM(), callback_manager=callback_manager, streaming=streaming
        )

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
            return _pieces(client.stream(query_str, _passages(text_chunks), **params))
        return _answer_text(client.answer(query_str, _passages(text_chunks), **params))

    async def aget_response(
        self, query_str: str, text_chunks: Sequence[str], **response_kwargs: Any
    ) -> RESPONSE_TEXT_TYPE:
        """The answer (an async generator of its new text when streaming)."""
        params = self._knowledge.call_params(response_kwargs)
        client = self._knowledge.async_()
        if self._streaming:
            return _apieces(client.stream(query_str, _passages(text_chunks), **params))
        return _answer_text(await client.answer(query_str, _passages(text_chunks), **params))

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
        app: str | None = None,
        host: str | None = None,
        api_key: str | SecretStr | None = None,
        auth: KnowledgeAuth = "bearer",
        model: str | None = None,
        csi_level: str | None = None,
        client: KnowledgeClient | None = None,
        async_client: AsyncKnowledgeClient | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
        **client_options: Any,
    ) -> None:
        self._inner = retriever
        self._content = list(content or ())
        self._knowledge = _knowledge(
            app=app,
            host=host,
            api_key=api_key,
            auth=auth,
            model=model,
            csi_level=csi_level,
            client=client,
            async_client=async_client,
            http_client=http_client,
            async_http_client=async_http_client,
            client_options=client_options,
        )
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def _passages(self, sources: Sequence[NodeWithScore]) -> list[str] | None:
        texts = [s.node.get_content(metadata_mode=MetadataMode.LLM) for s in sources]
        return _passages([*self._content, *texts])

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
