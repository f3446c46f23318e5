import subprocess
import sys

import opensearch_llm

EXPECTED = {
    "REGION_BASE_URLS",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncChatClient",
    "AsyncChatStream",
    "AuthenticationError",
    "BadRequestError",
    "ChatClient",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatParams",
    "ChatStream",
    "ContentFilterError",
    "ContextWindowExceededError",
    "InternalServerError",
    "Message",
    "MissingAPIKeyError",
    "ModelProfile",
    "NotFoundError",
    "OpenSearchLLMError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestValidationError",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "StreamAccumulator",
    "StreamError",
    "Timeouts",
    "__version__",
    "aggregate_chunks",
    "get_profile",
}


def test_public_surface_is_pinned() -> None:
    assert set(opensearch_llm.__all__) >= EXPECTED
    assert all(hasattr(opensearch_llm, name) for name in opensearch_llm.__all__)


def test_error_tree() -> None:
    from opensearch_llm import (
        APIConnectionError,
        APIStatusError,
        APITimeoutError,
        BadRequestError,
        ContentFilterError,
        ContextWindowExceededError,
        MissingAPIKeyError,
        OpenSearchLLMError,
        RequestValidationError,
        StreamError,
    )

    assert issubclass(RequestValidationError, ValueError) and issubclass(
        MissingAPIKeyError, ValueError
    )
    assert issubclass(APITimeoutError, APIConnectionError)
    assert issubclass(ContextWindowExceededError, BadRequestError)
    assert issubclass(ContentFilterError, APIStatusError)
    for cls in (RequestValidationError, APIConnectionError, APIStatusError, StreamError):
        assert issubclass(cls, OpenSearchLLMError)


def test_core_imports_neither_framework_nor_openai() -> None:
    code = (
        "import sys, opensearch_llm, opensearch_llm.chat;"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('langchain_core', 'llama_index', 'openai', 'uvicorn')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
