"""``OpenSearchRerank``: a LlamaIndex node postprocessor on the ``opensearch_llm`` rerank clients.

Use it in a query engine's ``node_postprocessors`` to keep the ``top_n`` nodes a retriever found,
most relevant first, each scored by the reranker.
"""

from __future__ import annotations

from typing import Any, ClassVar

from llama_index.core.bridge.pydantic import Field
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from llama_index_opensearch_llm.embeddings import ServiceFields
from opensearch_llm import RequestValidationError
from opensearch_llm.rerank import (
    DEFAULT_RERANK_MODEL,
    AsyncRerankClient,
    RerankClient,
    RerankResult,
    check_rerank_settings,
)

__all__ = ["OpenSearchRerank"]


class OpenSearchRerank(ServiceFields, BaseNodePostprocessor):
    """Reranks nodes with ``qwen3-rerank``, ``gte-rerank-v2`` or an OpenSearch ranker.

    Keeps at most ``top_n`` nodes (all with ``top_n=None``), most relevant first, each with the
    reranker's score; nodes without text are left out. Many nodes are split into requests
    within the model's limits, sent side by side. A bad setting fails at construction.

    Example::

        from llama_index_opensearch_llm import OpenSearchRerank

        engine = index.as_query_engine(
            similarity_top_k=20, node_postprocessors=[OpenSearchRerank(top_n=3)]
        )
    """

    model: str = Field(
        default=DEFAULT_RERANK_MODEL,
        description="qwen3-rerank, gte-rerank-v2, qwen3-vl-rerank or an OpenSearch ranker id.",
    )
    top_n: int | None = Field(default=3, gt=0, description="Nodes to keep (None: all).")
    instruct: str | None = Field(
        default=None, description="The task, for Model Studio models that take one."
    )

    CLIENT_FIELDS: ClassVar[frozenset[str]] = ServiceFields.CLIENT_FIELDS | {"model"}

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        check_rerank_settings(**self._plan_settings())

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex serialises this class under."""
        return "OpenSearchRerank"

    def _model_options(self) -> dict[str, Any]:
        return {"model": self.model}

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        scored, texts = _with_text(nodes)
        if not scored:
            return []
        result = self._sync_client(RerankClient).rerank(
            _query(query_bundle), texts, top_n=self.top_n, instruct=self.instruct
        )
        return _ranked(scored, result)

    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        scored, texts = _with_text(nodes)
        if not scored:
            return []
        result = await self._async_client(AsyncRerankClient).rerank(
            _query(query_bundle), texts, top_n=self.top_n, instruct=self.instruct
        )
        return _ranked(scored, result)


def _query(query_bundle: QueryBundle | None) -> str:
    if query_bundle is None:
        raise RequestValidationError(
            "query_bundle",
            None,
            "the query to rank the nodes for",
            "Pass query_bundle=QueryBundle(...) or query_str=... to postprocess_nodes().",
        )
    return query_bundle.query_str


def _with_text(nodes: list[NodeWithScore]) -> tuple[list[NodeWithScore], list[str]]:
    pairs = [(node, node.node.get_content(metadata_mode=MetadataMode.EMBED)) for node in nodes]
    kept = [(node, text) for node, text in pairs if text.strip()]
    return [node for node, _ in kept], [text for _, text in kept]


def _ranked(nodes: list[NodeWithScore], result: RerankResult) -> list[NodeWithScore]:
    return [NodeWithScore(node=nodes[item.index].node, score=item.score) for item in result.results]
