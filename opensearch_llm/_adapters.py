"""The pinned list of what the framework adapters may import from the core, and nothing else.

``langchain_opensearch_llm`` and ``llama_index_opensearch_llm`` import from the core only its
public modules (``opensearch_llm``, ``.knowledge``, ``.embeddings``, ``.rerank``) and the names
``__all__`` lists here (``tests/unit/test_adapters_surface.py`` checks both). Each name lives
where a newcomer would look for it (``docs/architecture.md`` has the map): messages, tool calls and
usage in ``_chat_messages``, content parts in ``_content``, token counts in ``_tokens``,
parameter layering in ``_params``, the thinking policy in ``_thinking``, knowledge-llm
settings in ``_knowledge``, the live clients in ``_client_cache``, the retry rule in
``_retry``, the missing-extra error in ``_extras``.
Whatever is the same in both frameworks is written once there,
so a fix fixes both; the adapters keep only the conversions to and from their own objects.
"""

from __future__ import annotations

from opensearch_llm._chat_messages import (
    first_choice,
    legacy_tool_call,
    merge_system_messages,
    new_tool_call_id,
    parse_tool_arguments,
    service_messages,
    usage_counts,
    wire_tool_call,
    wire_tool_choice,
)
from opensearch_llm._client_cache import AsyncHttpClient, ClientCache, OwnsClients, SyncHttpClient
from opensearch_llm._config import (
    API_KEY_ENV_VARS,
    CHAT_OPTION_NAMES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MODEL,
    KNOWLEDGE_OPTION_NAMES,
    ConnectionOptions,
    resolve_api_key,
    resolve_base_url,
)
from opensearch_llm._content import (
    UPLOAD_ADVICE,
    audio_data_url,
    audio_part,
    data_url,
    file_id_from_url,
    file_part,
    image_part,
    mark_last_part,
    role_content,
    text_content,
    text_part,
    video_part,
)
from opensearch_llm._extras import missing_extra
from opensearch_llm._knowledge import check_knowledge_settings, knowledge_passages
from opensearch_llm._params import sent_value, split_params
from opensearch_llm._retry import is_retryable
from opensearch_llm._service_client import OwnsServiceClients
from opensearch_llm._thinking import forced_tool_settings
from opensearch_llm._tokens import count_message_tokens, count_text_tokens, qwen_encoder
from opensearch_llm._validate import CHAT_PARAMS, validate_params

__all__ = [
    "API_KEY_ENV_VARS",
    "CHAT_OPTION_NAMES",
    "CHAT_PARAMS",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MODEL",
    "KNOWLEDGE_OPTION_NAMES",
    "UPLOAD_ADVICE",
    "AsyncHttpClient",
    "ClientCache",
    "ConnectionOptions",
    "OwnsClients",
    "OwnsServiceClients",
    "SyncHttpClient",
    "audio_data_url",
    "audio_part",
    "check_knowledge_settings",
    "count_message_tokens",
    "count_text_tokens",
    "data_url",
    "file_id_from_url",
    "file_part",
    "first_choice",
    "forced_tool_settings",
    "image_part",
    "is_retryable",
    "knowledge_passages",
    "legacy_tool_call",
    "mark_last_part",
    "merge_system_messages",
    "missing_extra",
    "new_tool_call_id",
    "parse_tool_arguments",
    "qwen_encoder",
    "resolve_api_key",
    "resolve_base_url",
    "role_content",
    "sent_value",
    "service_messages",
    "split_params",
    "text_content",
    "text_part",
    "usage_counts",
    "validate_params",
    "video_part",
    "wire_tool_call",
    "wire_tool_choice",
]
