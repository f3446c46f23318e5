"""The public names of the knowledge-llm feature, and the core's independence of frameworks."""

from __future__ import annotations

import subprocess
import sys

import langchain_opensearch_llm.retrievers as lc_retrievers
import llama_index_opensearch_llm.knowledge as li_knowledge
import opensearch_llm
import opensearch_llm.knowledge as knowledge

CORE_NAMES = {
    "AccessKeyCredentials",
    "AsyncKnowledgeClient",
    "AsyncKnowledgeStream",
    "KnowledgeClient",
    "KnowledgeResult",
    "KnowledgeStream",
}


def test_core_surface() -> None:
    assert set(opensearch_llm.__all__) >= CORE_NAMES
    for name in CORE_NAMES:
        assert getattr(opensearch_llm, name) is getattr(knowledge, name)
    assert all(hasattr(knowledge, name) for name in knowledge.__all__)
    assert knowledge.KNOWLEDGE_HOST_ENV_VAR == "OPENSEARCH_LLM_KNOWLEDGE_HOST"


def test_adapter_surfaces() -> None:
    assert set(lc_retrievers.__all__) == {
        "KnowledgeQuery",
        "OpenSearchKnowledgeRetriever",
        "OpenSearchKnowledgeRunnable",
    }
    assert set(li_knowledge.__all__) == {
        "OpenSearchKnowledgeRetriever",
        "OpenSearchKnowledgeSynthesizer",
    }


def test_knowledge_core_imports_no_framework() -> None:
    code = (
        "import sys, opensearch_llm.knowledge, opensearch_llm._knowledge;"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('langchain_core', 'llama_index', 'openai', 'uvicorn')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
