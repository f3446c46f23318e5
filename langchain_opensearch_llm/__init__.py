"""LangChain integration of Alibaba Cloud OpenSearch LLM, Model Studio (DashScope), AI gateway.

``ChatOpenSearchLLM`` is the chat model; ``OpenSearchKnowledgeRetriever`` and
``OpenSearchKnowledgeRunnable`` wrap knowledge-llm; the error classes are the core's errors that
are also langchain-core's ``Model*Error`` classes (see ``langchain_opensearch_llm._errors``).
"""

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
    OpenSearchLLMServerError,
    OpenSearchLLMStreamError,
    OpenSearchLLMTimeoutError,
)
from langchain_opensearch_llm.chat_models import ChatOpenSearchLLM
from langchain_opensearch_llm.retrievers import (
    KnowledgeQuery,
    OpenSearchKnowledgeRetriever,
    OpenSearchKnowledgeRunnable,
)

__all__ = [
    "ChatOpenSearchLLM",
    "KnowledgeQuery",
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
    "OpenSearchLLMServerError",
    "OpenSearchLLMStreamError",
    "OpenSearchLLMTimeoutError",
]
