"""``OpenSearchRerank``: a LangChain document compressor on the ``opensearch_llm`` rerank clients.

Use it in a ``ContextualCompressionRetriever`` to keep the ``top_n`` documents a retriever found,
most relevant first, with their score in ``metadata["relevance_score"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import model_validator
from typing_extensions import Self

from langchain_opensearch_llm._errors import langchain_errors
from langchain_opensearch_llm.embeddings import ServiceSettings
from opensearch_llm.rerank import (
    DEFAULT_RERANK_MODEL,
    AsyncRerankClient,
    RerankClient,
    RerankResult,
    check_rerank_settings,
)

__all__ = ["RELEVANCE_SCORE_KEY", "OpenSearchRerank"]

#: The metadata key of a reranked document's score.
RELEVANCE_SCORE_KEY = "relevance_score"


class OpenSearchRerank(ServiceSettings, BaseDocumentCompressor):
    """Reranks documents with ``qwen3-rerank``, ``gte-rerank-v2`` or an OpenSearch ranker.

    ``compress_documents`` returns at most ``top_n`` documents (all with ``top_n=None``), most
    relevant first, each a copy with ``metadata["relevance_score"]``. Documents without text
    are left out (nothing to score). Many documents are split into requests within the model's
    limits, sent side by side.

    Example:
        .. code-block:: python

            from langchain_classic.retrievers import ContextualCompressionRetriever

            retriever = ContextualCompressionRetriever(
                base_compressor=OpenSearchRerank(model="qwen3-rerank", top_n=3),
                base_retriever=store.as_retriever(search_kwargs={"k": 20}),
            )
    """

    model: str = DEFAULT_RERANK_MODEL
    """``qwen3-rerank``, ``gte-rerank-v2``, ``qwen3-vl-rerank`` or an OpenSearch ranker id."""
    top_n: int | None = 3
    """Documents to keep; None keeps them all, reordered."""
    instruct: str | None = None
    """The task, for Model Studio models that take one (English recommended)."""

    CLIENT_FIELDS: ClassVar[frozenset[str]] = ServiceSettings.CLIENT_FIELDS | {"model"}

    @model_validator(mode="after")
    def _check_settings(self) -> Self:
        """Fail at construction on a bad setting; a missing key is reported on the first call."""
        check_rerank_settings(**self._plan_settings())
        return self

    def _model_options(self) -> dict[str, Any]:
        return {"model": self.model}

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """The ``top_n`` most relevant documents, highest score first, scores in metadata."""
        scored = _with_text(documents)
        if not scored:
            return []
        with langchain_errors():
            result = self._sync_client(RerankClient).rerank(
                query, [d.page_content for d in scored], top_n=self.top_n, instruct=self.instruct
            )
        return _ranked(scored, result)

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """The ``top_n`` most relevant documents, highest score first, scores in metadata."""
        scored = _with_text(documents)
        if not scored:
            return []
        with langchain_errors():
            result = await self._async_client(AsyncRerankClient).rerank(
                query, [d.page_content for d in scored], top_n=self.top_n, instruct=self.instruct
            )
        return _ranked(scored, result)


def _with_text(documents: Sequence[Document]) -> list[Document]:
    return [document for document in documents if document.page_content.strip()]


def _ranked(documents: list[Document], result: RerankResult) -> list[Document]:
    return [
        documents[item.index].model_copy(
            update={"metadata": {**documents[item.index].metadata, RELEVANCE_SCORE_KEY: item.score}}
        )
        for item in result.results
    ]
