"""Alibaba Cloud OpenSearch LLM, Model Studio (DashScope) and AI gateway chat: the shared core.

Framework-free: the LangChain adapter (``langchain_opensearch_llm``) and the LlamaIndex adapter
(``llama_index_opensearch_llm``) are built on it.
"""

from opensearch_llm._accumulate import StreamAccumulator, aggregate_chunks
from opensearch_llm._config import REGION_BASE_URLS, Timeouts
from opensearch_llm._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    ContextWindowExceededError,
    InternalServerError,
    MissingAPIKeyError,
    NotFoundError,
    OpenSearchLLMError,
    PermissionDeniedError,
    RateLimitError,
    RequestValidationError,
    ResponseDecodeError,
    ResponseTooLargeError,
    StreamError,
)
from opensearch_llm._profiles import ModelProfile, get_profile
from opensearch_llm._types import ChatCompletion, ChatCompletionChunk, ChatParams, Message
from opensearch_llm._version import __version__
from opensearch_llm.chat import AsyncChatClient, AsyncChatStream, ChatClient, ChatStream
from opensearch_llm.embeddings import (
    AsyncEmbeddingClient,
    EmbeddingClient,
    EmbeddingResult,
    SparseEmbeddingResult,
)
from opensearch_llm.knowledge import (
    AccessKeyCredentials,
    AsyncKnowledgeClient,
    AsyncKnowledgeStream,
    KnowledgeClient,
    KnowledgeResult,
    KnowledgeStream,
)
from opensearch_llm.rerank import AsyncRerankClient, RerankClient, RerankItem, RerankResult

__all__ = [
    "REGION_BASE_URLS",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AccessKeyCredentials",
    "AsyncChatClient",
    "AsyncChatStream",
    "AsyncEmbeddingClient",
    "AsyncKnowledgeClient",
    "AsyncKnowledgeStream",
    "AsyncRerankClient",
    "AuthenticationError",
    "BadRequestError",
    "ChatClient",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatParams",
    "ChatStream",
    "ContentFilterError",
    "ContextWindowExceededError",
    "EmbeddingClient",
    "EmbeddingResult",
    "InternalServerError",
    "KnowledgeClient",
    "KnowledgeResult",
    "KnowledgeStream",
    "Message",
    "MissingAPIKeyError",
    "ModelProfile",
    "NotFoundError",
    "OpenSearchLLMError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestValidationError",
    "RerankClient",
    "RerankItem",
    "RerankResult",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "SparseEmbeddingResult",
    "StreamAccumulator",
    "StreamError",
    "Timeouts",
    "__version__",
    "aggregate_chunks",
    "get_profile",
]
