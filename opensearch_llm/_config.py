"""Regions, environment variable names and defaults: one place for each fact."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypedDict

from pydantic import SecretStr
from typing_extensions import Unpack

from opensearch_llm._errors import MissingAPIKeyError, RequestValidationError
from opensearch_llm._validate import HEADER_MAP, is_header_map, shown_headers

#: Environment variables read for the API key, in order of precedence.
API_KEY_ENV_VARS: tuple[str, ...] = ("OPENSEARCH_LLM_API_KEY", "DASHSCOPE_API_KEY")
#: Environment variable read for the base URL when neither ``base_url`` nor ``region`` is given.
BASE_URL_ENV_VAR = "OPENSEARCH_LLM_BASE_URL"
#: Environment variables for knowledge-llm: the host (``{host}``) and the app name.
KNOWLEDGE_HOST_ENV_VAR = "OPENSEARCH_LLM_KNOWLEDGE_HOST"
KNOWLEDGE_APP_ENV_VAR = "OPENSEARCH_LLM_APP"

#: Model Studio compatible-mode base URLs by region (docs/service-facts.md,
#: "Regions and keys"; a key works only in its region).
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
#: Connections a client opens at most (more requests wait for one), and keeps alive when idle.
DEFAULT_MAX_CONNECTIONS = 256
DEFAULT_MAX_KEEPALIVE_CONNECTIONS = 64
#: Bytes of a non-streamed response body (after decompression) before it is refused.
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: Bytes of one streamed line, SSE event or knowledge-llm frame before it is refused.
DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024
#: Bytes read after a stream's answer is complete (``[DONE]``, the end of the chunked body) to
#: give its connection back to the pool; a longer rest closes the connection instead.
STREAM_DRAIN_BYTES = 64 * 1024

USER_AGENT_PREFIX = "opensearch-llm-python"


def resolve_api_key(
    api_key: str | SecretStr | None, env: Mapping[str, str] | None = None
) -> SecretStr:
    """The API key from the argument, else from the first environment variable that is set.

    Surrounding whitespace (a key read from a file ends with a newline) is dropped; a key with
    other spaces, control characters or non-ASCII characters is refused, without showing it.
    """
    if isinstance(api_key, SecretStr):
        api_key = api_key.get_secret_value()
    if api_key and api_key.strip():
        return _checked_key(api_key.strip(), "api_key")
    environ = os.environ if env is None else env
    for name in API_KEY_ENV_VARS:
        value = (environ.get(name) or "").strip()
        if value:
            return _checked_key(value, name)
    raise MissingAPIKeyError(
        "No API key: pass api_key=... or set "
        + " or ".join(API_KEY_ENV_VARS)
        + ". Keys are created per region in the Model Studio or OpenSearch console."
    )


def _checked_key(key: str, source: str) -> SecretStr:
    # Sent in an HTTP header: anything but visible ASCII would fail there, and the failure
    # (an encoding or connection error) would carry the key into messages and logs.
    if not key.isascii() or not key.isprintable() or " " in key:
        raise RequestValidationError(
            source,
            "<hidden>",
            "visible ASCII characters only, as the console shows the key",
            "Copy the key again, without spaces or line breaks inside it.",
        )
    return SecretStr(key)


def resolve_base_url(
    base_url: str | None, region: str | None, env: Mapping[str, str] | None = None
) -> str:
    """The base URL from ``base_url``, else ``region``, else the environment, else Singapore."""
    if base_url is not None and region is not None:
        raise RequestValidationError(
            "base_url", base_url, "either base_url or region, not both", "Pass only one of them."
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


def resolve_host_url(
    host: str | None,
    env_var: str,
    example: str,
    hint: str,
    env: Mapping[str, str] | None = None,
) -> str:
    """A service's ``host`` (an http(s) URL) from the argument, else from ``env_var``.

    Neither: the error shows ``example`` and says ``hint`` (where to find the endpoint).
    """
    if host is None:
        host = (os.environ if env is None else env).get(env_var) or None
    if host is None:
        raise RequestValidationError("host", None, f"an endpoint URL such as {example}", hint)
    try:
        return validate_base_url(host)
    except RequestValidationError:
        raise RequestValidationError(
            "host", host, "an absolute http:// or https:// URL with a host name and no spaces"
        ) from None


@dataclass(frozen=True)
class Timeouts:
    """Seconds allowed to connect, for responses, between streamed bytes and for whole streams.

    ``read`` bounds a whole non-streamed response (and a stream aggregated into one answer);
    ``stream_idle`` each wait for a stream's next bytes; ``stream_total`` (None: no limit) a
    whole stream.
    """

    connect: float = DEFAULT_CONNECT_TIMEOUT
    read: float = DEFAULT_READ_TIMEOUT
    stream_idle: float = DEFAULT_STREAM_IDLE_TIMEOUT
    stream_total: float | None = None

    def __post_init__(self) -> None:
        for name in ("connect", "read", "stream_idle", "stream_total"):
            value = getattr(self, name)
            if value is None and name == "stream_total":
                continue
            if (
                not isinstance(value, (int, float))
                or isinstance(value, bool)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise RequestValidationError(
                    f"timeout.{name}", value, "a finite number of seconds > 0"
                )


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
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    #: Secrets other than the key that the service might echo (an AccessKey secret).
    other_secrets: tuple[SecretStr, ...] = field(default=(), repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret an error or a log line must mask: the key and ``other_secrets``."""
        return tuple(s.get_secret_value() for s in (self.api_key, *self.other_secrets))

    def __post_init__(self) -> None:
        if not is_header_map(self.default_headers):
            shown = shown_headers(self.default_headers)
            raise RequestValidationError("default_headers", shown, HEADER_MAP)
        _check_int("max_retries", self.max_retries, 0)
        _check_int("max_connections", self.max_connections, 1)
        _check_int("max_response_bytes", self.max_response_bytes, 1)
        _check_int("max_event_bytes", self.max_event_bytes, 1)


def _check_int(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise RequestValidationError(name, value, f"an integer >= {minimum}")


class ConnectionOptions(TypedDict, total=False):
    """The connection settings every client takes as keyword arguments; None: the default."""

    #: Seconds for a whole non-streamed response (or a ``Timeouts``, which sets them all).
    timeout: float | Timeouts | None
    connect_timeout: float | None
    #: Seconds between two streamed chunks.
    stream_idle_timeout: float | None
    #: Seconds for a whole stream (off by default).
    stream_timeout: float | None
    max_retries: int
    default_headers: Mapping[str, str] | None
    max_response_bytes: int | None
    max_event_bytes: int | None
    max_connections: int | None


def make_config(
    api_key: SecretStr,
    base_url: str,
    *,
    other_secrets: tuple[SecretStr, ...] = (),
    **options: Unpack[ConnectionOptions],
) -> ClientConfig:
    """A ``ClientConfig`` from a client's keyword arguments; None means the default.

    A ``Timeouts`` given as ``timeout`` wins over the other timeout arguments. An unknown
    keyword is a ``TypeError`` naming the options there are.
    """
    unknown = sorted(set(options) - set(ConnectionOptions.__annotations__))
    if unknown:
        raise TypeError(
            f"unexpected keyword argument {unknown[0]!r}; the connection options are "
            + ", ".join(ConnectionOptions.__annotations__)
        )
    timeout = options.get("timeout")
    if isinstance(timeout, Timeouts):
        timeouts = timeout
    else:
        given = {
            "read": timeout,
            "connect": options.get("connect_timeout"),
            "stream_idle": options.get("stream_idle_timeout"),
            "stream_total": options.get("stream_timeout"),
        }
        timeouts = Timeouts(**{k: v for k, v in given.items() if v is not None})
    return ClientConfig(
        api_key=api_key,
        base_url=base_url,
        timeouts=timeouts,
        max_retries=options.get("max_retries", DEFAULT_MAX_RETRIES),
        default_headers=dict(options.get("default_headers") or {}),
        max_response_bytes=_or_default(
            options.get("max_response_bytes"), DEFAULT_MAX_RESPONSE_BYTES
        ),
        max_event_bytes=_or_default(options.get("max_event_bytes"), DEFAULT_MAX_EVENT_BYTES),
        max_connections=_or_default(options.get("max_connections"), DEFAULT_MAX_CONNECTIONS),
        other_secrets=other_secrets,
    )


def _or_default(value: int | None, default: int) -> int:
    return default if value is None else value


# --------------------------------------------------------------------------- client options

#: The connection settings every client takes (the adapters' fields of the same names).
_CONNECTION_OPTION_NAMES: tuple[str, ...] = ("api_key", *ConnectionOptions.__annotations__)
#: ``ChatClient``/``AsyncChatClient`` keyword arguments an adapter copies from its settings.
CHAT_OPTION_NAMES: tuple[str, ...] = (*_CONNECTION_OPTION_NAMES, "base_url", "region")
#: ``KnowledgeClient``/``AsyncKnowledgeClient`` keyword arguments (besides ``auth``).
KNOWLEDGE_OPTION_NAMES: tuple[str, ...] = (*_CONNECTION_OPTION_NAMES, "host", "app")
