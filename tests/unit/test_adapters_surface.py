"""``opensearch_llm._adapters`` is the adapters' one door into the core's private modules."""

from __future__ import annotations

import ast
from pathlib import Path

import opensearch_llm._adapters as adapters

EXPECTED = {
    "API_KEY_ENV_VARS",
    "CHAT_OPTION_NAMES",
    "CHAT_PARAMS",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MODEL",
    "KNOWLEDGE_OPTION_NAMES",
    "UPLOAD_ADVICE",
    "AsyncHttpClient",
    "ClientCache",
    "SyncHttpClient",
    "audio_data_url",
    "audio_part",
    "check_knowledge_settings",
    "count_message_tokens",
    "count_text_tokens",
    "data_url",
    "file_id_from_url",
    "file_part",
    "image_part",
    "mark_last_part",
    "qwen_encoder",
    "service_messages",
    "text_content",
    "text_part",
    "video_part",
    "first_choice",
    "forced_tool_settings",
    "is_retryable",
    "knowledge_passages",
    "legacy_tool_call",
    "merge_system_messages",
    "missing_extra",
    "new_tool_call_id",
    "OwnsClients",
    "ConnectionOptions",
    "OwnsServiceClients",
    "parse_tool_arguments",
    "resolve_api_key",
    "role_content",
    "resolve_base_url",
    "sent_value",
    "split_params",
    "usage_counts",
    "validate_params",
    "wire_tool_call",
    "wire_tool_choice",
}
ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = ("langchain_opensearch_llm", "llama_index_opensearch_llm")
# Public core modules an adapter may import besides ``_adapters``.
PUBLIC_CORE = {
    "opensearch_llm",
    "opensearch_llm.knowledge",
    "opensearch_llm.embeddings",
    "opensearch_llm.rerank",
    "opensearch_llm._adapters",
}


def test_the_surface_is_pinned() -> None:
    assert set(adapters.__all__) == EXPECTED
    for name in adapters.__all__:
        assert hasattr(adapters, name), name


def _core_imports(path: Path) -> list[tuple[str, list[str]]]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("opensearch_llm"):
            found.append((node.module or "", [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("opensearch_llm")]
    return found


def test_adapters_reach_the_core_only_through_public_modules_and_this_surface() -> None:
    for package in ADAPTERS:
        for path in sorted((ROOT / package).glob("*.py")):
            for module, names in _core_imports(path):
                assert module in PUBLIC_CORE, f"{path.name} imports {module}"
                if module == "opensearch_llm._adapters":
                    assert set(names) <= EXPECTED, f"{path.name}: {set(names) - EXPECTED}"
                else:
                    assert not [n for n in names if n.startswith("_")], f"{path.name}: {names}"
