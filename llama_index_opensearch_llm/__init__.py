"""LlamaIndex integration for Alibaba Cloud OpenSearch LLM, Model Studio and the AI gateway.

Example::

    from llama_index_opensearch_llm import OpenSearchLLM

    llm = OpenSearchLLM(model="qwen-plus")
    print(llm.complete("Hello").text)

knowledge-llm: ``OpenSearchKnowledgeSynthesizer`` (a response synthesizer for query engines) and
``OpenSearchKnowledgeRetriever`` (an inner retriever composed with knowledge-llm).
Embeddings and rerank: ``OpenSearchEmbedding`` (a ``BaseEmbedding``) and ``OpenSearchRerank`` (a
node postprocessor).
"""

try:
    import llama_index.core  # noqa: F401
except ModuleNotFoundError as error:  # without the extra: say which one to install
    from opensearch_llm._adapters import missing_extra

    raise missing_extra("llama_index_opensearch_llm", "llama-index", error) from None

from llama_index_opensearch_llm.base import OpenSearchLLM
from llama_index_opensearch_llm.embeddings import OpenSearchEmbedding
from llama_index_opensearch_llm.knowledge import (
    OpenSearchKnowledgeRetriever,
    OpenSearchKnowledgeSynthesizer,
)
from llama_index_opensearch_llm.rerank import OpenSearchRerank

__all__ = [
    "OpenSearchEmbedding",
    "OpenSearchKnowledgeRetriever",
    "OpenSearchKnowledgeSynthesizer",
    "OpenSearchLLM",
    "OpenSearchRerank",
]
