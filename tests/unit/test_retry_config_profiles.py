from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from opensearch_llm import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    InternalServerError,
    MissingAPIKeyError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestValidationError,
    get_profile,
)
from opensearch_llm._config import REGION_BASE_URLS, resolve_api_key, resolve_base_url
from opensearch_llm._profiles import PROFILES
from opensearch_llm._retry import backoff_delay, is_retryable, parse_retry_after, retry_allowed
from opensearch_llm._thinking import thinking_enabled


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RateLimitError("x", status=429), True),
        (InternalServerError("x", status=500), True),
        (InternalServerError("x", status=502), True),
        (InternalServerError("x", status=503), True),
        (InternalServerError("x", status=504), True),
        (InternalServerError("x", status=501), False),
        (RateLimitError("x", status=200, code="Throttling"), True),
        (APIConnectionError("reset"), True),
        (APITimeoutError("slow"), True),
        (BadRequestError("x", status=400), False),
        (AuthenticationError("x", status=401), False),
        (PermissionDeniedError("x", status=403), False),
        (NotFoundError("x", status=404), False),
        (ContentFilterError("x", status=400), False),
        (ValueError("x"), False),
    ],
)
def test_what_is_retried(error: BaseException, expected: bool) -> None:
    assert is_retryable(error) is expected


def test_retry_after_above_the_cap_is_not_waited_for() -> None:
    assert retry_allowed(RateLimitError("x", status=429, retry_after=5), max_retry_after=10)
    assert not retry_allowed(RateLimitError("x", status=429, retry_after=500), max_retry_after=10)


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    assert backoff_delay(1, rand=lambda: 1.0) == 0.5
    assert backoff_delay(3, rand=lambda: 1.0) == 2.0
    assert backoff_delay(3, rand=lambda: 0.0) == 1.0
    assert backoff_delay(20, rand=lambda: 1.0) == 8.0
    assert backoff_delay(1, retry_after=4.5) == 4.5


def test_retry_after_seconds_date_and_milliseconds() -> None:
    assert parse_retry_after({"retry-after": "7"}) == 7.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    moment = datetime(2030, 1, 1, 0, 0, 30, tzinfo=timezone.utc)
    now = datetime(2030, 1, 1, 0, 0, 0, tzinfo=timezone.utc).timestamp()
    assert parse_retry_after({"retry-after": format_datetime(moment, usegmt=True)}, now=now) == 30.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_api_key_precedence() -> None:
    env = {"OPENSEARCH_LLM_API_KEY": "a", "DASHSCOPE_API_KEY": "b"}
    assert resolve_api_key("given", env).get_secret_value() == "given"
    assert resolve_api_key(None, env).get_secret_value() == "a"
    assert resolve_api_key(None, {"DASHSCOPE_API_KEY": "b"}).get_secret_value() == "b"


def test_a_key_read_from_a_file_loses_its_line_break() -> None:
    assert resolve_api_key("sk-abc123\n", {}).get_secret_value() == "sk-abc123"
    env = {"OPENSEARCH_LLM_API_KEY": " \n", "DASHSCOPE_API_KEY": "\tsk-env\r\n"}
    assert resolve_api_key(None, env).get_secret_value() == "sk-env"


@pytest.mark.parametrize("key", ["sk-ab\ncd", "sk-ab cd", "sk-\u00e9t\u00e9", "sk-\x00x"])
def test_a_key_that_cannot_be_a_header_is_refused_without_showing_it(key: str) -> None:
    for given, env, setting in (
        (key, {}, "api_key"),
        (None, {"DASHSCOPE_API_KEY": key}, "DASHSCOPE_API_KEY"),
    ):
        with pytest.raises(RequestValidationError) as info:
            resolve_api_key(given, env)
        assert info.value.field == setting
        shown = f"{info.value} {info.value!r} {info.value.args} {info.value.value}"
        assert "sk-" not in shown


def test_missing_key_names_both_variables() -> None:
    with pytest.raises(MissingAPIKeyError) as info:
        resolve_api_key(None, {})
    assert "OPENSEARCH_LLM_API_KEY" in str(info.value) and "DASHSCOPE_API_KEY" in str(info.value)


def test_base_url_sources() -> None:
    assert (
        resolve_base_url("http://h/compatible-mode/v1/", None, {}) == "http://h/compatible-mode/v1"
    )
    assert resolve_base_url(None, "beijing", {}) == REGION_BASE_URLS["beijing"]
    assert resolve_base_url(None, "Hong Kong", {}) == REGION_BASE_URLS["hongkong"]
    assert (
        resolve_base_url(None, None, {"OPENSEARCH_LLM_BASE_URL": "https://gw/api/v1"})
        == "https://gw/api/v1"
    )
    assert resolve_base_url(None, None, {}) == REGION_BASE_URLS["singapore"]


@pytest.mark.parametrize(
    ("base_url", "region", "field"),
    [
        (None, "mars", "region"),
        ("dashscope.aliyuncs.com", None, "base_url"),
        ("http://", None, "base_url"),
        ("http://a b/v1", None, "base_url"),
        ("http://h", "beijing", "base_url"),
    ],
)
def test_bad_base_url_or_region(base_url: str | None, region: str | None, field: str) -> None:
    with pytest.raises(RequestValidationError) as info:
        resolve_base_url(base_url, region, {})
    assert info.value.field == field


@pytest.mark.parametrize(
    ("model", "thinking", "stream_only"),
    [
        ("qwen-plus", "hybrid", False),
        ("qwen-plus-2025-01-25", "hybrid", False),
        ("qwen-plus-latest", "hybrid", False),
        ("qwen-plus-us", "hybrid", False),
        ("qwen3-max-preview", "none", False),
        ("qwq-plus-latest", "only", True),
        ("qwen3-235b-a22b-thinking-2507", "only", True),
        ("qwen3-235b-a22b", "hybrid", False),
        ("qwen3-235b-a22b-instruct-2507", "none", False),
        ("qwen3-8b", "hybrid", False),
        ("ops-qwen-turbo", "none", False),
        ("some-new-thinking-model", "only", True),
    ],
)
def test_profiles_by_name_family_and_pattern(model: str, thinking: str, stream_only: bool) -> None:
    profile = get_profile(model)
    assert (profile.thinking, profile.stream_only) == (thinking, stream_only)


def test_unknown_models_get_safe_defaults() -> None:
    profile = get_profile("my-fine-tune")
    assert not profile.known and profile.thinking == "none" and profile.tools
    assert profile.context_window > 0 and profile.max_output > 0


def test_every_model_named_in_the_api_docs_has_a_profile() -> None:
    named = [
        "qwen3-max",
        "qwen-max",
        "qwen3.5-plus",
        "qwen-plus",
        "qwen-flash",
        "qwen-turbo",
        "qwen3-coder-plus",
        "qwen3-coder-flash",
        "qwq-plus",
        "qwen-coder-plus",
        "qwen-coder-turbo",
        "qwen-math-plus",
        "qwen-math-turbo",
        "qwen3.5-397b-a17b",
        "qwen3-next-80b-a3b-thinking",
        "qwen3-next-80b-a3b-instruct",
        "qwen3-30b-a3b-thinking-2507",
        "qwen3-30b-a3b-instruct-2507",
        "qwen3-32b",
        "qwen3-30b-a3b",
        "qwen3-14b",
        "qwen3-4b",
        "qwen3-1.7b",
        "qwen3-0.6b",
        "qwen2.5-14b-instruct-1m",
        "qwen2.5-7b-instruct-1m",
        "qwen2.5-72b-instruct",
        "qwen2.5-0.5b-instruct",
        "ops-qwen-turbo",
        "opensearch-llama2-13b",
        "opensearch-falcon-7b",
        "gpt-3.5-turbo",
        "qwen-flash-us",
        "qwen-plus-us",
    ]
    assert all(get_profile(name).known for name in named)
    assert all(p.max_output <= p.context_window for p in PROFILES.values())


def test_thinking_switch() -> None:
    hybrid_on = get_profile("qwen3-32b")
    assert thinking_enabled(hybrid_on, None) and not thinking_enabled(hybrid_on, False)
    assert not thinking_enabled(get_profile("qwen-plus"), None)
    assert thinking_enabled(get_profile("qwq-plus"), False)
    assert not thinking_enabled(get_profile("qwen-max"), True)
