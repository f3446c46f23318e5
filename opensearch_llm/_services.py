"""Where embedding and rerank requests go, and the checks both make. Pure; no I/O.

Two families serve them (docs/service-facts.md, "Embeddings and rerank"): Model Studio, under the
compatible-mode base URL chat uses (and its ``compatible-api`` and native ``/api/v1`` siblings),
and the OpenSearch AI Search platform, at ``{host}/v3/openapi/workspaces/{workspace}/
{service type}/{service id}``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opensearch_llm._config import ConnectionOptions, resolve_base_url, resolve_host_url
from opensearch_llm._errors import RequestValidationError, ResponseDecodeError

#: The AI Search platform's endpoint and workspace when ``host`` / ``workspace`` are not given.
SEARCH_HOST_ENV_VAR = "OPENSEARCH_LLM_SEARCH_HOST"
SEARCH_WORKSPACE_ENV_VAR = "OPENSEARCH_LLM_WORKSPACE"
DEFAULT_WORKSPACE = "default"
PLATFORM_PATH_TEMPLATE = "/v3/openapi/workspaces/{workspace}/{service}/{service_id}"
#: The platform refuses request bodies larger than this (OpenSearch "Text embedding" et al.).
PLATFORM_MAX_BODY_BYTES = 8 * 1024 * 1024

COMPATIBLE_MODE_SUFFIX = "/compatible-mode/v1"
COMPATIBLE_API_SUFFIX = "/compatible-api/v1"
#: Requests in flight at once for one call that was split into several (each its own request).
DEFAULT_MAX_CONCURRENCY = 8

#: Connection options only streams use: embedding and rerank answers are never streamed.
STREAM_OPTION_NAMES: tuple[str, ...] = ("stream_idle_timeout", "stream_timeout", "max_event_bytes")
#: Where a client sends: Model Studio's ``base_url``/``region``, or the platform's ``host``/
#: ``workspace``.
ENDPOINT_OPTION_NAMES: tuple[str, ...] = ("base_url", "region", "host", "workspace")
#: The keyword arguments ``EmbeddingClient`` and ``RerankClient`` (and their async twins) share,
#: besides the model's own; the adapters' fields of the same names.
SERVICE_OPTION_NAMES: tuple[str, ...] = (
    "api_key",
    *ENDPOINT_OPTION_NAMES,
    "max_concurrency",
    *(name for name in ConnectionOptions.__annotations__ if name not in STREAM_OPTION_NAMES),
)

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def resolve_search_host(host: str | None, env: Mapping[str, str] | None = None) -> str:
    """The AI Search platform endpoint from ``host``, else ``OPENSEARCH_LLM_SEARCH_HOST``."""
    return resolve_host_url(
        host,
        SEARCH_HOST_ENV_VAR,
        "http://<instance>.platform-cn-shanghai.opensearch.aliyuncs.com",
        f"OpenSearch services (ops-*) need the AI Search platform endpoint: pass host=... or "
        f"set {SEARCH_HOST_ENV_VAR}.",
        env,
    )


def resolve_workspace(workspace: str | None, env: Mapping[str, str] | None = None) -> str:
    """The workspace from ``workspace``, else ``OPENSEARCH_LLM_WORKSPACE``, else ``default``."""
    if workspace is None:
        workspace = (os.environ if env is None else env).get(SEARCH_WORKSPACE_ENV_VAR) or None
    workspace = DEFAULT_WORKSPACE if workspace is None else workspace
    if not isinstance(workspace, str) or not _NAME.fullmatch(workspace):
        raise RequestValidationError(
            "workspace", workspace, "a workspace name: letters, digits, '_', '-' and '.'"
        )
    return workspace


@dataclass(frozen=True)
class Endpoint:
    """Where a client sends: Model Studio's ``base_url``, or the platform's host and workspace."""

    base: str
    workspace: str | None = None

    @property
    def platform(self) -> bool:
        """Whether this is the AI Search platform (``host`` and ``workspace``)."""
        return self.workspace is not None


def resolve_endpoint(
    platform: bool,
    *,
    base_url: str | None = None,
    region: str | None = None,
    host: str | None = None,
    workspace: str | None = None,
) -> Endpoint:
    """The endpoint of a Model Studio model (``base_url``/``region``) or a platform service.

    An argument of the other kind is refused: it would be ignored.
    """
    if platform:
        for name, value in (("base_url", base_url), ("region", region)):
            if value is not None:
                raise RequestValidationError(
                    name, value, "None for OpenSearch services (ops-*): pass host= instead"
                )
        return Endpoint(resolve_search_host(host), resolve_workspace(workspace))
    for name, value in (("host", host), ("workspace", workspace)):
        if value is not None:
            raise RequestValidationError(
                name, value, "None for Model Studio models: pass base_url= or region= instead"
            )
    return Endpoint(resolve_base_url(base_url, region))


def platform_url(host: str, workspace: str, service: str, service_id: str) -> str:
    """``{host}/v3/openapi/workspaces/{workspace}/{service}/{service_id}``."""
    path = PLATFORM_PATH_TEMPLATE.format(
        workspace=workspace, service=service, service_id=service_id
    )
    return host + path


def modelstudio_root(base_url: str) -> str:
    """The host part of a Model Studio base URL: without ``/compatible-mode/v1`` (or ``-api``)."""
    for suffix in (COMPATIBLE_MODE_SUFFIX, COMPATIBLE_API_SUFFIX):
        if base_url.endswith(suffix):
            return base_url[: -len(suffix)]
    return base_url


def check_model_name(model: Any) -> str:
    """``model`` if it is a plain model or service name (it may become part of a URL path)."""
    if not isinstance(model, str) or not _NAME.fullmatch(model):
        raise RequestValidationError(
            "model", model, "a model or service name: letters, digits, '_', '-' and '.'"
        )
    return model


def check_positive(name: str, value: Any, maximum: int | None = None) -> int | None:
    """``value`` if it is None or an integer from 1 (to ``maximum``)."""
    if value is None:
        return None
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    if not ok or (maximum is not None and value > maximum):
        allowed = f"an integer from 1 to {maximum}" if maximum else "an integer >= 1"
        raise RequestValidationError(name, value, allowed)
    return int(value)


def check_body_size(field: str, body: bytes, limit: int | None) -> bytes:
    """``body`` if it is at most ``limit`` bytes (None: no limit)."""
    if limit is not None and len(body) > limit:
        raise RequestValidationError(
            field,
            f"<{len(body)} bytes of JSON>",
            f"a request body of at most {limit} bytes",
            "Send fewer or shorter texts per call.",
        )
    return body


def split(count: int, size: int) -> list[range]:
    """Consecutive ranges of at most ``size`` positions covering ``range(count)``."""
    return [range(start, min(start + size, count)) for start in range(0, count, size)]


def items_by_index(items: Any, count: int, what: str) -> list[dict[str, Any]]:
    """``items`` (a list of objects with an index) ordered by index; each of ``count`` once.

    The service says where each result belongs (``index``); list order is not relied on.
    """
    if not isinstance(items, list) or len(items) != count:
        raise ResponseDecodeError(
            f"expected {count} {what}, got {_shown(items)}", body=str(items)[:200]
        )
    ordered: list[dict[str, Any] | None] = [None] * count
    for item in items:
        position = item.get("index") if isinstance(item, dict) else None
        if (
            not isinstance(position, int)
            or not 0 <= position < count
            or ordered[position] is not None
        ):
            raise ResponseDecodeError(
                f"a result of {what} has a bad index: {str(item)[:200]}",
                body=str(item)[:200],
            )
        ordered[position] = item
    return ordered  # type: ignore[return-value]  # every slot was filled exactly once


def _shown(items: Any) -> str:
    return f"{len(items)}" if isinstance(items, list) else type(items).__name__


def value_at(body: Any, *path: str) -> Any:
    """The value at ``path`` in nested objects (e.g. ``"result", "scores"``), else None."""
    for key in path:
        body = body.get(key) if isinstance(body, dict) else None
    return body


def usage_number(body: Any, *path: str) -> int | None:
    """The integer at ``path`` in ``body`` (e.g. ``usage``, ``total_tokens``), else None."""
    value = value_at(body, *path)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def text_list(name: str, texts: Any) -> Sequence[Any]:
    """``texts`` if it is a list or tuple (a lone string is refused: it is not a list of texts)."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise RequestValidationError(name, texts, "a list of strings")
    return texts
