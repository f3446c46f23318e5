"""The public surface of ``llama_index_opensearch_llm`` and what importing it costs."""

from __future__ import annotations

import subprocess
import sys

import llama_index_opensearch_llm


def test_the_public_surface_is_pinned() -> None:
    assert llama_index_opensearch_llm.__all__ == [
        "OpenSearchEmbedding",
        "OpenSearchKnowledgeRetriever",
        "OpenSearchKnowledgeSynthesizer",
        "OpenSearchLLM",
        "OpenSearchRerank",
    ]
    for name in llama_index_opensearch_llm.__all__:
        assert getattr(llama_index_opensearch_llm, name).__doc__


def test_import_pulls_in_neither_openai_nor_langchain() -> None:
    code = (
        "import sys, llama_index_opensearch_llm; "
        "print(sorted(m for m in ('openai', 'langchain_core', 'tiktoken') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
