"""Regions, environment variable names and defaults: one place for each fact."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import SecretStr

from opensearch_llm._errors import MissingAPIKeyError, RequestValidationError

#: Environment variables read for the API key, in order of precedence.
API_KEY_ENV_VARS: tuple[str, ...] = ("OPENSEARCH_LLM_API_KEY", "DASHSCOPE_API_KEY")
#: Environment variable read for the base URL when neither ``base_url`` nor ``region`` is given.
BASE_URL_ENV_VAR = "OPENSEARCH_LLM_BASE_URL"
#: Environment variables for knowledge-llm: the host (api-docs 002 ``{host}``) and the app name.
KNOWLEDGE_HOST_ENV_VAR = "OPENSEARCH_LLM_KNOWLEDGE_HOST"
KNOWLEDGE_APP_ENV_VAR = "OPENSEARCH_LLM_APP"

#: Model Studio compatible-mode base URLs by region (api-docs 003; a key works only in its region).
REGION_BASE_URLS: dict[str, str] = {
    "singapore": "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
    "virginia": "https://dashscope-us.aliyuncs.com/compatible-mode/v1",
    "beijing": "https://dashscope.aliyuncs.com/compatible-mode/v1",
    "hongkong": "https://cn-hongkong.dashscope.aliyuncs.com/compatible-mode/v1",
}
DEFAULT_REGION = "singapore"

CHAT_COMPLETIONS_PATH = "/chat/completions"
KNOWLEDGE_PATH_TEMPLATE = "/v3/openapi/apps/{app}/actions/knowledge-llm"

DEFAULT_MODEL = "qwen-plus"
DEFAULT_MAX_RETRIES = 2
DEFAULT_CONNECT_TIMEOUT = 10.0
#: Seconds to wait for data of a non-streamed response (thinking models may take minutes).
DEFAULT_READ_TIMEOUT = 600.0
#: Seconds to wait for the next streamed chunk (the first one included).
DEFAULT_STREAM_IDLE_TIMEOUT = 120.0
#: A ``Retry-After`` longer than this is not waited for: the error is raised instead.
DEFAULT_MAX_RETRY_AFTER = 60.0
#: Exponential backoff between retries: the first delay and the largest, before jitter.
DEFAULT_BACKOFF_INITIAL = 0.5
DEFAULT_BACKOFF_MAX = 8.0
DEFAULT_POOL_LIMITS = {"max_connections": 256, "max_keepalive_connections": 64}
#: Bytes of a non-streamed response body (after decompression) before it is refused.
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: Bytes of one streamed line, SSE event or knowledge-llm frame before it is refused.
DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024

USER_AGENT_PREFIX = "opensearch-llm-python"


def resolve_api_key(
    api_key: str | SecretStr | None, env: Mapping[str, str] | None = None
) -> SecretStr:
    """The API key from the argument, else from the first environment variable that is set."""
    if isinstance(api_key, SecretStr):
        api_key = api_key.get_secret_value()
    if api_key:
        return SecretStr(api_key)
    environ = os.environ if env is None else env
    for name in API_KEY_ENV_VARS:
        value = environ.get(name)
        if value:
            return SecretStr(value)
    raise MissingAPIKeyError(
        "No API key: pass api_key=... or set "
        + " or ".join(API_KEY_ENV_VARS)
        + ". Keys are created per region in the Model Studio or OpenSearch console."
    )


def resolve_base_url(
    base_url: str | None, region: str | None, env: Mapping[str, str] | None = None
) -> str:
    """The base URL from ``base_url``, else ``region``, else the environment, else Singapore."""
    if base_url is not None and region is not None:
        raise RequestValidationError(
            "base_url", base_url, "either base_url or region, not both", "base_url and region"
        )
    if base_url is None and region is not None:
        return region_base_url(region)
    if base_url is None:
        base_url = (os.environ if env is None else env).get(BASE_URL_ENV_VAR) or REGION_BASE_URLS[
            DEFAULT_REGION
        ]
    return validate_base_url(base_url)


def region_base_url(region: str) -> str:
    """The compatible-mode base URL of a Model Studio region."""
    key = region.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    try:
        return REGION_BASE_URLS[key]
    except KeyError:
        raise RequestValidationError("region", region, "one of " + ", ".join(REGION_BASE_URLS))


def validate_base_url(base_url: str) -> str:
    """``base_url`` without a trailing slash, if it is an absolute http(s) URL."""
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise RequestValidationError(
            "base_url",
            base_url,
            "an absolute http:// or https:// URL such as " + REGION_BASE_URLS[DEFAULT_REGION],
        )
    host = base_url.split("://", 1)[1].split("/", 1)[0]
    if not host or " " in base_url:
        raise RequestValidationError("base_url", base_url, "a URL with a host name and no spaces")
    return base_url.rstrip("/")


@dataclass(frozen=True)
class Timeouts:
    """Connect, read (non-streamed response) and stream idle (between streamed bytes) timeouts."""

    connect: float = DEFAULT_CONNECT_TIMEOUT
    read: float = DEFAULT_READ_TIMEOUT
    stream_idle: float = DEFAULT_STREAM_IDLE_TIMEOUT

    def __post_init__(self) -> None:
        for name in ("connect", "read", "stream_idle"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise RequestValidationError(f"timeout.{name}", value, "a number of seconds > 0")


@dataclass(frozen=True)
class ClientConfig:
    """Everything a transport needs to know, resolved once when a client is made."""

    api_key: SecretStr = field(repr=False)
    base_url: str
    timeouts: Timeouts = Timeouts()
    max_retries: int = DEFAULT_MAX_RETRIES
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    backoff_initial: float = DEFAULT_BACKOFF_INITIAL
    backoff_max: float = DEFAULT_BACKOFF_MAX
    default_headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (
            not isinstance(self.max_retries, int)
            or isinstance(self.max_retries, bool)
            or self.max_retries < 0
        ):
            raise RequestValidationError("max_retries", self.max_retries, "an integer >= 0")
