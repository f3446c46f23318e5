"""knowledge-llm in LangChain: a retriever that answers, and a runnable that streams the answer.

Both send the question and the passages (an inner retriever's documents, the documents in the
input, or fixed ``content``) to ``opensearch_llm``'s knowledge clients; the core validates,
signs, retries, parses the stream and raises typed errors (re-raised here as the adapter's
LangChain-flavoured classes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, ClassVar, TypedDict

from langchain_core.callbacks import (
    AsyncCallbackManagerForChainRun,
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForChainRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.runnables.utils import AddableDict
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator
from typing_extensions import Self

from langchain_opensearch_llm._errors import langchain_errors
from opensearch_llm import RequestValidationError
from opensearch_llm._adapters import (
    DEFAULT_MAX_RETRIES,
    KNOWLEDGE_OPTION_NAMES,
    AsyncHttpClient,
    ClientCache,
    OwnsClients,
    SyncHttpClient,
    check_knowledge_settings,
    knowledge_passages,
)
from opensearch_llm.knowledge import (
    AccessKeyCredentials,
    AsyncKnowledgeClient,
    KnowledgeAuth,
    KnowledgeClient,
    KnowledgeParams,
    KnowledgeResult,
)

__all__ = ["KnowledgeQuery", "OpenSearchKnowledgeRetriever", "OpenSearchKnowledgeRunnable"]


class KnowledgeQuery(TypedDict, total=False):
    """The input of ``OpenSearchKnowledgeRunnable``: a question and its passages."""

    question: str
    #: Passages: ``Document``s (their ``page_content``) or strings.
    documents: Sequence[Document | str]
    #: A direct prompt; overrides question and documents (docs/service-facts.md, "knowledge-llm").
    prompt: str


def _passages(fixed: Sequence[str] | None, documents: Sequence[Document | str]) -> list[str] | None:
    """Fixed content then the documents' text, without blank passages; None when there is none."""
    texts = (d if isinstance(d, str) else d.page_content for d in documents)
    return knowledge_passages(fixed or (), texts)


def _answer_document(result: KnowledgeResult, sources: Sequence[Document | str]) -> Document:
    metadata = {
        "request_id": result.request_id,
        "latency": result.latency,
        "model": result.model,
        "source_documents": [s if isinstance(s, Document) else Document(s) for s in sources],
        "data": result.data,
    }
    return Document(page_content=result.answer, metadata=metadata)


class _KnowledgeSettings(OwnsClients, BaseModel):
    """The connection and request settings both classes share."""

    # The input of a failed validation would show the key: never print it.
    model_config = ConfigDict(
        populate_by_name=True, arbitrary_types_allowed=True, hide_input_in_errors=True
    )

    app: str | None = None
    """The application (app group) name (console, Instance Management); default:
    ``OPENSEARCH_LLM_APP``."""
    host: str | None = None
    """The instance endpoint; default: ``OPENSEARCH_LLM_KNOWLEDGE_HOST``."""
    api_key: SecretStr | None = Field(default=None, repr=False)
    """API key; default: ``OPENSEARCH_LLM_API_KEY``, then ``DASHSCOPE_API_KEY`` (a missing key
    is reported on the first call, like the chat model's)."""
    access_key_id: str | None = None
    """With ``access_key_secret``: sign requests with the AccessKey pair instead of the key."""
    access_key_secret: SecretStr | None = Field(default=None, repr=False)
    """The AccessKey secret (never shown in a repr or an error)."""
    model: str | None = None
    """The LLM, e.g. ``qwen-plus``; default: the application's."""
    csi_level: str | None = None
    """Moderation of the answer: ``none`` or ``loose``."""
    content: list[str] | None = None
    """Fixed passages sent before any retrieved ones."""
    retriever: BaseRetriever | None = None
    """An inner retriever whose documents become the passages."""
    timeout: float | None = None
    """Seconds to wait for a whole non-streamed answer (core default 600)."""
    connect_timeout: float | None = None
    """Seconds to wait for a connection (core default 10)."""
    stream_idle_timeout: float | None = None
    """Seconds to wait for the next streamed bytes (core default 120)."""
    stream_timeout: float | None = None
    """Seconds for a whole stream (core default: no limit)."""
    max_response_bytes: int | None = None
    """Bytes of a non-streamed response before it is refused (core default 64 MiB)."""
    max_event_bytes: int | None = None
    """Bytes of one streamed line or frame before it is refused (core default 16 MiB)."""
    max_connections: int | None = None
    """Connections open at once at most; more requests wait (core default 256)."""
    max_retries: int = DEFAULT_MAX_RETRIES
    """Retries of 429, 5xx and connection errors (never after a stream's first byte)."""
    default_headers: dict[str, str] | None = Field(default=None, repr=False, exclude=True)
    """Headers sent with every request (not shown in a repr, not serialized)."""
    http_client: SyncHttpClient = Field(default=None, exclude=True, repr=False)
    """An ``httpx.Client`` to send through (e.g. one on the emulator's transport)."""
    http_async_client: AsyncHttpClient = Field(default=None, exclude=True, repr=False)
    """An ``httpx.AsyncClient`` to send through, for the async methods."""

    _clients: ClientCache[KnowledgeClient, AsyncKnowledgeClient] = PrivateAttr(
        default_factory=ClientCache
    )
    CLIENT_FIELDS: ClassVar[frozenset[str]] = frozenset(
        (
            *KNOWLEDGE_OPTION_NAMES,
            "access_key_id",
            "access_key_secret",
            "http_client",
            "http_async_client",
        )
    )

    @model_validator(mode="after")
    def _check_settings(self) -> Self:
        """Fail at construction on a bad setting; a missing key is reported on the first call."""
        check_knowledge_settings(
            app=self.app,
            host=self.host,
            auth=self._auth(),
            content=self.content,
            params=self._params(),
        )
        return self

    def _auth(self) -> KnowledgeAuth:
        if self.access_key_id is None and self.access_key_secret is None:
            return "bearer"
        if self.access_key_id is None or self.access_key_secret is None:
            missing = "access_key_id" if self.access_key_id is None else "access_key_secret"
            raise RequestValidationError(missing, None, "set together with the other half")
        return AccessKeyCredentials(self.access_key_id, self.access_key_secret)

    def _params(self) -> KnowledgeParams:
        return {"model": self.model, "csi_level": self.csi_level}

    def _client_options(self) -> dict[str, Any]:
        options = {name: getattr(self, name) for name in KNOWLEDGE_OPTION_NAMES}
        return {**options, "auth": self._auth()}

    def _sync_client(self) -> KnowledgeClient:
        return self._clients.sync(
            lambda: KnowledgeClient(http_client=self.http_client, **self._client_options())
        )

    def _async_client(self) -> AsyncKnowledgeClient:
        return self._clients.async_(
            lambda: AsyncKnowledgeClient(
                http_client=self.http_async_client, **self._client_options()
            )
        )

    def _settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _KnowledgeSettings.model_fields}

    def close(self) -> None:
        """Close the sync connection pool (an injected ``http_client`` is left open)."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close this event loop's connection pool (an injected client is left open)."""
        await self._clients.aclose()


class OpenSearchKnowledgeRetriever(_KnowledgeSettings, BaseRetriever):
    """A retriever whose one document is knowledge-llm's answer to the query.

    The passages are ``content`` (fixed) and the documents of ``retriever`` (any LangChain
    retriever); with neither, the question alone is sent. The answer's metadata holds
    ``request_id``, ``latency``, ``model``, ``source_documents`` and the service's ``data``.

    Example:
        .. code-block:: python

            from langchain_opensearch_llm.retrievers import OpenSearchKnowledgeRetriever

            kb = OpenSearchKnowledgeRetriever(app="my_app", retriever=vector_store.as_retriever())
            answer = kb.invoke("what is OpenSearch")[0]
            answer.page_content, answer.metadata["source_documents"]
            runnable = kb.as_runnable()  # {"question", "documents"} -> streamed answer
    """

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        sources: list[Document] = []
        if self.retriever is not None:
            sources = self.retriever.invoke(query, config={"callbacks": run_manager.get_child()})
        with langchain_errors():
            result = self._sync_client().answer(
                query, _passages(self.content, sources), **self._params()
            )
        return [_answer_document(result, sources)]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        sources: list[Document] = []
        if self.retriever is not None:
            sources = await self.retriever.ainvoke(
                query, config={"callbacks": run_manager.get_child()}
            )
        with langchain_errors():
            result = await self._async_client().answer(
                query, _passages(self.content, sources), **self._params()
            )
        return [_answer_document(result, sources)]

    def as_runnable(self) -> OpenSearchKnowledgeRunnable:
        """The runnable form with the same settings (its input carries the documents)."""
        return OpenSearchKnowledgeRunnable(**self._settings())


class _Call(TypedDict):
    question: str | None
    documents: list[Document | str]
    prompt: str | None


def _call_of(query: KnowledgeQuery | str) -> _Call:
    if isinstance(query, str):
        return {"question": query, "documents": [], "prompt": None}
    if not isinstance(query, dict):
        raise RequestValidationError(
            "input", query, 'a question string or {"question": ..., "documents": [...]}'
        )
    documents = query.get("documents") or []
    if isinstance(documents, (str, Document)):
        documents = [documents]
    for position, document in enumerate(documents):
        if not isinstance(document, (str, Document)):
            raise RequestValidationError(
                f"documents[{position}]", document, "a str or a langchain Document"
            )
    return {
        "question": query.get("question"),
        "documents": list(documents),
        "prompt": query.get("prompt"),
    }


def _merge_inputs(chunks: list[Any]) -> Any:
    # Streamed dict inputs arrive as partial dicts: add them up the way LangChain does.
    if len(chunks) == 1 or not all(isinstance(c, dict) for c in chunks):
        return chunks[-1]
    merged = AddableDict(chunks[0])
    for chunk in chunks[1:]:
        merged = merged + AddableDict(chunk)
    return dict(merged)


class OpenSearchKnowledgeRunnable(_KnowledgeSettings, RunnableSerializable[Any, str]):
    """knowledge-llm as a runnable: ``{"question", "documents"}`` in, the answer text out.

    ``documents`` are ``Document``s or strings (they follow any fixed ``content``); without
    them, an inner ``retriever`` (if set) finds them. A plain string input is the question.
    ``stream``/``astream`` yield the answer's new text as it arrives.

    Example:
        .. code-block:: python

            from langchain_core.runnables import RunnablePassthrough

            chain = {"question": RunnablePassthrough(), "documents": retriever} | (
                OpenSearchKnowledgeRunnable(app="my_app")
            )
            for piece in chain.stream("what is OpenSearch"):
                print(piece, end="")
    """

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> str:
        """The whole answer."""
        return self._call_with_config(self._invoke, input, config, **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> str:
        """The whole answer."""
        return await self._acall_with_config(self._ainvoke, input, config, **kwargs)

    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[str]:
        """The answer's new text, piece by piece."""
        yield from self._transform_stream_with_config(iter([input]), self._transform, config)

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[str]:
        """The answer's new text, piece by piece."""

        async def one() -> AsyncIterator[Any]:
            yield input

        async for piece in self._atransform_stream_with_config(one(), self._atransform, config):
            yield piece

    def transform(
        self, input: Iterator[Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[str]:
        """Stream the answer to the (merged) input chunks."""
        yield from self._transform_stream_with_config(input, self._transform, config)

    async def atransform(
        self, input: AsyncIterator[Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[str]:
        """Stream the answer to the (merged) input chunks."""
        async for piece in self._atransform_stream_with_config(input, self._atransform, config):
            yield piece

    # ------------------------------------------------------------------ internals

    def _documents(self, call: _Call, run_manager: CallbackManagerForChainRun) -> list[Any]:
        if call["documents"] or self.retriever is None or call["question"] is None:
            return call["documents"]
        callbacks = run_manager.get_child()
        return list(self.retriever.invoke(call["question"], config={"callbacks": callbacks}))

    async def _adocuments(
        self, call: _Call, run_manager: AsyncCallbackManagerForChainRun
    ) -> list[Any]:
        if call["documents"] or self.retriever is None or call["question"] is None:
            return call["documents"]
        callbacks = run_manager.get_child()
        return list(await self.retriever.ainvoke(call["question"], config={"callbacks": callbacks}))

    def _request(self, call: _Call, documents: list[Any]) -> tuple[Any, Any, KnowledgeParams]:
        params = self._params()
        if call["prompt"] is not None:
            params["prompt"] = call["prompt"]
        return call["question"], _passages(self.content, documents), params

    def _invoke(self, query: Any, run_manager: CallbackManagerForChainRun) -> str:
        call = _call_of(query)
        question, content, params = self._request(call, self._documents(call, run_manager))
        with langchain_errors():
            return self._sync_client().answer(question, content, **params).answer

    async def _ainvoke(self, query: Any, run_manager: AsyncCallbackManagerForChainRun) -> str:
        call = _call_of(query)
        documents = await self._adocuments(call, run_manager)
        question, content, params = self._request(call, documents)
        with langchain_errors():
            result = await self._async_client().answer(question, content, **params)
        return result.answer

    def _transform(
        self, inputs: Iterator[Any], run_manager: CallbackManagerForChainRun
    ) -> Iterator[str]:
        call = _call_of(_merge_inputs(list(inputs)))
        question, content, params = self._request(call, self._documents(call, run_manager))
        with langchain_errors(), self._sync_client().stream(question, content, **params) as s:
            yield from s

    async def _atransform(
        self, inputs: AsyncIterator[Any], run_manager: AsyncCallbackManagerForChainRun
    ) -> AsyncIterator[str]:
        call = _call_of(_merge_inputs([chunk async for chunk in inputs]))
        documents = await self._adocuments(call, run_manager)
        question, content, params = self._request(call, documents)
        with langchain_errors():
            stream = self._async_client().stream(question, content, **params)
            async with stream:
                async for piece in stream:
                    yield piece
