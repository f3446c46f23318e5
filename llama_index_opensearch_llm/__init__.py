"""LlamaIndex integration for Alibaba Cloud OpenSearch LLM, Model Studio and the AI gateway.

Example::

    from llama_index_opensearch_llm import OpenSearchLLM

    llm = OpenSearchLLM(model="qwen-plus")
    print(llm.complete("Hello").text)

knowledge-llm: ``OpenSearchKnowledgeSynthesizer`` (a response synthesizer for query engines) and
``OpenSearchKnowledgeRetriever`` (an inner retriever composed with knowledge-llm).
"""

from llama_index_opensearch_llm.base import OpenSearchLLM
from llama_index_opensearch_llm.knowledge import (
    OpenSearchKnowledgeRetriever,
    OpenSearchKnowledgeSynthesizer,
)

__all__ = ["OpenSearchKnowledgeRetriever", "OpenSearchKnowledgeSynthesizer", "OpenSearchLLM"]
