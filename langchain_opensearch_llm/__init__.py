"""LangChain integration of Alibaba Cloud OpenSearch LLM, Model Studio (DashScope), AI gateway.

``ChatOpenSearchLLM`` is the chat model; ``OpenSearchKnowledgeRetriever`` and
``OpenSearchKnowledgeRunnable`` wrap knowledge-llm; ``OpenSearchEmbeddings`` embeds texts and
``OpenSearchRerank`` reranks documents; the error classes are the core's errors that are also
langchain-core's ``Model*Error`` classes (see ``langchain_opensearch_llm._errors``).
"""

from typing import TYPE_CHECKING, Any

try:
    import langchain_core  # noqa: F401
except ModuleNotFoundError as error:  # without the extra: say which one to install
    from opensearch_llm._adapters import missing_extra

    raise missing_extra("langchain_opensearch_llm", "langchain", error) from None

from langchain_opensearch_llm._errors import (
    OpenSearchLLMAPIStatusError,
    OpenSearchLLMAuthenticationError,
    OpenSearchLLMConnectionError,
    OpenSearchLLMContentFilterError,
    OpenSearchLLMContextOverflowError,
    OpenSearchLLMInvalidRequestError,
    OpenSearchLLMNotFoundError,
    OpenSearchLLMPermissionDeniedError,
    OpenSearchLLMRateLimitError,
    OpenSearchLLMResponseDecodeError,
    OpenSearchLLMResponseTooLargeError,
    OpenSearchLLMServerError,
    OpenSearchLLMStreamError,
    OpenSearchLLMTimeoutError,
)
from langchain_opensearch_llm.chat_models import ChatOpenSearchLLM

if TYPE_CHECKING:
    from langchain_opensearch_llm.embeddings import OpenSearchEmbeddings
    from langchain_opensearch_llm.rerank import OpenSearchRerank
    from langchain_opensearch_llm.retrievers import (
        KnowledgeQuery,
        OpenSearchKnowledgeRetriever,
        OpenSearchKnowledgeRunnable,
    )

_RETRIEVERS = ("KnowledgeQuery", "OpenSearchKnowledgeRetriever", "OpenSearchKnowledgeRunnable")
_EMBEDDINGS = {"OpenSearchEmbeddings": ".embeddings", "OpenSearchRerank": ".rerank"}


def __getattr__(name: str) -> Any:
    # knowledge-llm is imported when first named: a chat-only import does not pay for it.
    if name in _RETRIEVERS:
        from langchain_opensearch_llm import retrievers

        return getattr(retrievers, name)
    if name in _EMBEDDINGS:  # embeddings and rerank too
        from importlib import import_module

        return getattr(import_module(_EMBEDDINGS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "ChatOpenSearchLLM",
    "KnowledgeQuery",
    "OpenSearchEmbeddings",
    "OpenSearchKnowledgeRetriever",
    "OpenSearchKnowledgeRunnable",
    "OpenSearchLLMAPIStatusError",
    "OpenSearchLLMAuthenticationError",
    "OpenSearchLLMConnectionError",
    "OpenSearchLLMContentFilterError",
    "OpenSearchLLMContextOverflowError",
    "OpenSearchLLMInvalidRequestError",
    "OpenSearchLLMNotFoundError",
    "OpenSearchLLMPermissionDeniedError",
    "OpenSearchLLMRateLimitError",
    "OpenSearchLLMResponseDecodeError",
    "OpenSearchLLMResponseTooLargeError",
    "OpenSearchLLMServerError",
    "OpenSearchLLMStreamError",
    "OpenSearchLLMTimeoutError",
    "OpenSearchRerank",
]
