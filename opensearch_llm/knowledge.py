"""knowledge-llm: an answer summarised from passages, or to a direct prompt; sync and async.

``POST {host}/v3/openapi/apps/{app}/actions/knowledge-llm`` (docs/service-facts.md,
"knowledge-llm"). The pure work (bodies, answers, the tolerant stream parser, the
``OPENSEARCH`` signature) is in ``_knowledge``; sending, retries and timeouts are the
transport's, as for chat.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timezone
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from typing_extensions import Unpack

from opensearch_llm._bodies import encode_json
from opensearch_llm._client_base import AsyncClientBase, SyncClientBase
from opensearch_llm._config import (
    DEFAULT_MAX_EVENT_BYTES,
    KNOWLEDGE_HOST_ENV_VAR,
    ClientConfig,
    ConnectionOptions,
    make_config,
    resolve_api_key,
)
from opensearch_llm._knowledge import (
    AccessKeyCredentials,
    KnowledgeAuth,
    KnowledgeParams,
    KnowledgeRequest,
    KnowledgeResult,
    KnowledgeStreamDecoder,
    build_knowledge_request,
    credentials_from,
    knowledge_url,
    resolve_app,
    resolve_host,
    signature_date,
    signed_headers,
)
from opensearch_llm._streams import AsyncStream, SyncStream

if TYPE_CHECKING:
    import httpx

    from opensearch_llm._transport import OpenStream

__all__ = [
    "KNOWLEDGE_HOST_ENV_VAR",
    "AccessKeyCredentials",
    "AsyncKnowledgeClient",
    "AsyncKnowledgeStream",
    "KnowledgeAuth",
    "KnowledgeClient",
    "KnowledgeParams",
    "KnowledgeResult",
    "KnowledgeStream",
]

# With AccessKey auth every request carries its own signed Authorization header, which replaces
# the transport's Bearer one; the config still needs a key, so it gets this unused placeholder.
_UNUSED_KEY = SecretStr("unused-with-access-key-auth")


def _nonce(now: datetime) -> str:
    # The documented form: a 10-digit timestamp in seconds and random digits.
    return f"{int(now.timestamp())}{secrets.randbelow(900_000) + 100_000}"


class _KnowledgeClientBase:
    _config: ClientConfig

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        *,
        host: str | None = None,
        app: str | None = None,
        auth: KnowledgeAuth = "bearer",
        **options: Unpack[ConnectionOptions],
    ) -> None:
        self._app = resolve_app(app)
        self._credentials = credentials_from(auth)
        key = _UNUSED_KEY if self._credentials else resolve_api_key(api_key)
        self._config = make_config(
            key,
            resolve_host(host),
            other_secrets=(self._credentials.access_key_secret,) if self._credentials else (),
            **options,
        )
        self._url = knowledge_url(self._config.base_url, self._app)

    @property
    def host(self) -> str:
        """The endpoint requests go to."""
        return self._config.base_url

    @property
    def app(self) -> str:
        """The application (app group) name."""
        return self._app

    @property
    def url(self) -> str:
        """``{host}/v3/openapi/apps/{app}/actions/knowledge-llm``."""
        return self._url

    def __repr__(self) -> str:
        auth = "access_key" if self._credentials else "bearer"
        return f"{type(self).__name__}(host={self.host!r}, app={self._app!r}, auth={auth!r})"

    def _prepare(
        self,
        question: str | None,
        content: Sequence[str] | None,
        params: KnowledgeParams,
        *,
        stream: bool,
    ) -> tuple[KnowledgeRequest, bytes, Callable[[], dict[str, str]]]:
        request = build_knowledge_request(
            question=question, content=content, stream=stream, **params
        )
        body = encode_json(request.payload)
        return request, body, partial(self._headers, body, request.headers)

    def _headers(self, body: bytes, extra: dict[str, str]) -> dict[str, str]:
        if self._credentials is None:
            return extra
        now = datetime.now(timezone.utc)
        signed = signed_headers(
            self._credentials,
            method="POST",
            url=self._url,
            body=body,
            date=signature_date(now),
            nonce=_nonce(now),
            headers={**self._config.default_headers, **extra},
        )
        return {**extra, **signed}


class KnowledgeClient(_KnowledgeClientBase, SyncClientBase):
    """knowledge-llm, synchronous; one pooled ``httpx.Client`` per instance.

    The API key comes from ``api_key``, else ``OPENSEARCH_LLM_API_KEY``, else
    ``DASHSCOPE_API_KEY``; the host from ``host``, else ``OPENSEARCH_LLM_KNOWLEDGE_HOST``.
    ``auth=AccessKeyCredentials(id, secret)`` signs requests instead (``OPENSEARCH`` scheme).

    Example::

        with KnowledgeClient(host="http://xxx.opensearch.aliyuncs.com", app="my_app") as kb:
            result = kb.answer("what is OpenSearch", ["OpenSearch is ...", "Havenask is ..."])
            print(result.answer, result.request_id)
            with kb.stream("what is OpenSearch", ["..."]) as stream:
                for piece in stream:
                    print(piece, end="")
    """

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        *,
        http_client: httpx.Client | None = None,
        **options: Any,
    ) -> None:
        super().__init__(api_key, **options)
        self._connect(self._config, http_client)

    def answer(
        self,
        question: str | None = None,
        content: Sequence[str] | None = None,
        **params: Unpack[KnowledgeParams],
    ) -> KnowledgeResult:
        """The answer to ``question`` from the ``content`` passages (or to ``prompt=``)."""
        request, body, headers = self._prepare(question, content, params, stream=False)
        return self._transport.post_json(self._url, body, headers, request.parse)

    def stream(
        self,
        question: str | None = None,
        content: Sequence[str] | None = None,
        **params: Unpack[KnowledgeParams],
    ) -> KnowledgeStream:
        """A stream of the answer's new text; validated now, sent when entered or iterated."""
        request, body, headers = self._prepare(question, content, params, stream=True)
        return KnowledgeStream(
            lambda: self._transport.open_stream(self._url, body, headers),
            request.model,
            self._config.max_event_bytes,
        )


class AsyncKnowledgeClient(_KnowledgeClientBase, AsyncClientBase):
    """knowledge-llm, asynchronous; one aiohttp connection pool per instance (per event loop).

    Example::

        async with AsyncKnowledgeClient(app="my_app") as kb:
            result = await kb.answer("what is OpenSearch", ["OpenSearch is ..."])
            async with kb.stream(prompt="Say hello") as stream:
                async for piece in stream:
                    print(piece, end="")
    """

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        *,
        http_client: httpx.AsyncClient | None = None,
        **options: Any,
    ) -> None:
        super().__init__(api_key, **options)
        self._connect(self._config, http_client)

    async def answer(
        self,
        question: str | None = None,
        content: Sequence[str] | None = None,
        **params: Unpack[KnowledgeParams],
    ) -> KnowledgeResult:
        """The answer to ``question`` from the ``content`` passages (or to ``prompt=``)."""
        request, body, headers = self._prepare(question, content, params, stream=False)
        return await self._transport.post_json(self._url, body, headers, request.parse)

    def stream(
        self,
        question: str | None = None,
        content: Sequence[str] | None = None,
        **params: Unpack[KnowledgeParams],
    ) -> AsyncKnowledgeStream:
        """A stream of the answer's new text; validated now, sent when entered or iterated."""
        request, body, headers = self._prepare(question, content, params, stream=True)
        return AsyncKnowledgeStream(
            lambda: self._transport.open_stream(self._url, body, headers),
            request.model,
            self._config.max_event_bytes,
        )


class KnowledgeStream(SyncStream[str, KnowledgeResult]):
    """A streamed answer: iterate it for the new text; use it in ``with`` to close it surely.

    A break after text arrived raises ``StreamError`` whose ``partial`` is the
    ``KnowledgeResult`` so far.
    """

    def __init__(
        self,
        opener: Callable[[], OpenStream],
        model: str | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        super().__init__(
            opener, KnowledgeStreamDecoder(model=model, max_event_bytes=max_event_bytes)
        )

    @property
    def text(self) -> str:
        """The answer received so far."""
        return self.result().answer


class AsyncKnowledgeStream(AsyncStream[str, KnowledgeResult]):
    """A streamed answer: ``async for`` its new text; ``async with`` closes it surely."""

    def __init__(
        self,
        opener: Callable[[], Coroutine[Any, Any, OpenStream]],
        model: str | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        super().__init__(
            opener, KnowledgeStreamDecoder(model=model, max_event_bytes=max_event_bytes)
        )

    @property
    def text(self) -> str:
        """The answer received so far."""
        return self.result().answer
