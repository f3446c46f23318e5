"""knowledge-llm: build and check requests, parse answers and streams, sign. Pure.

The service's rules are in docs/service-facts.md, "knowledge-llm".

The API summarises an answer to ``question`` from ``content`` passages, or answers a direct
``prompt`` ("If you specify the prompt parameter, the values of the question and content
parameters do not take effect"). Answers are ``{request_id, latency, result: {data: [{answer,
type}]}, errors: [{code, message}]}``; errors arrive in ``errors[]`` or as ``status: "FAIL"``,
under HTTP 200 too (``_bodies.decode_response`` raises them).

Streams (``options.stream: true``) are parsed tolerantly (docs/service-facts.md, "Streams"): SSE
``data:`` frames with or without a space, bare JSON objects one per line or back to back,
``[DONE]`` in any case, and frames carrying either the next piece of the answer or the whole
answer so far; only the new text is yielded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, TypedDict
from urllib.parse import parse_qsl, quote, urlsplit

from pydantic import SecretStr

from opensearch_llm._bodies import error_from_body, event_error, parse_event_data, request_id_of
from opensearch_llm._config import (
    DEFAULT_MAX_EVENT_BYTES,
    KNOWLEDGE_APP_ENV_VAR,
    KNOWLEDGE_HOST_ENV_VAR,
    KNOWLEDGE_PATH_TEMPLATE,
    resolve_host_url,
)
from opensearch_llm._errors import (
    OpenSearchLLMError,
    RequestValidationError,
    ResponseDecodeError,
    StreamError,
    broken_stream,
)
from opensearch_llm._framing import Frame, Framer
from opensearch_llm._validate import HEADER_MAP, check_extra_body, is_header_map, shown_headers

#: ``csi_level`` values: ``none`` does not moderate, ``loose`` blocks.
CSI_LEVELS: tuple[str, ...] = ("none", "loose")
#: The content type sent, and signed, with every request.
KNOWLEDGE_CONTENT_TYPE = "application/json"
#: The scheme name of the AccessKey signature (``Authorization: OPENSEARCH <id>:<signature>``).
SIGNATURE_SCHEME = "OPENSEARCH"
#: Headers whose names start with this are part of the signed string.
SIGNED_HEADER_PREFIX = "x-opensearch-"
#: A fresh number per request (replay protection); signed like every x-opensearch-* header.
NONCE_HEADER = "X-Opensearch-Nonce"

_APP_NAME = re.compile(r"[A-Za-z0-9_.\-]+")

# --------------------------------------------------------------------------- endpoint


def resolve_host(host: str | None, env: Mapping[str, str] | None = None) -> str:
    """The knowledge-llm host from ``host``, else ``OPENSEARCH_LLM_KNOWLEDGE_HOST``."""
    return resolve_host_url(
        host,
        KNOWLEDGE_HOST_ENV_VAR,
        "http://<instance>.opensearch.aliyuncs.com",
        f"Pass host=... or set {KNOWLEDGE_HOST_ENV_VAR}: your OpenSearch instance's endpoint, "
        "which the console lists under endpoints.",
        env,
    )


def resolve_app(app: str | None, env: Mapping[str, str] | None = None) -> str:
    """The application name from ``app``, else ``OPENSEARCH_LLM_APP``, validated."""
    if app is None:
        app = (os.environ if env is None else env).get(KNOWLEDGE_APP_ENV_VAR) or None
    return validate_app(app)


def validate_app(app: Any) -> str:
    """``app``, the application (app group) name, if it is a plain non-empty name."""
    if not isinstance(app, str) or not app:
        raise RequestValidationError(
            "app", app, "the application name shown on the console's Instance Management page"
        )
    if not _APP_NAME.fullmatch(app):
        raise RequestValidationError("app", app, "letters, digits, '_', '-' and '.' only")
    return app


def knowledge_url(host: str, app: str) -> str:
    """``{host}/v3/openapi/apps/{app}/actions/knowledge-llm``."""
    return host + KNOWLEDGE_PATH_TEMPLATE.format(app=app)


# --------------------------------------------------------------------------- requests


class KnowledgeParams(TypedDict, total=False):
    """The knowledge-llm fields besides ``question`` and ``content``; None means not sent."""

    #: The question's type (``text``, the default); sent with ``question``.
    type: str | None
    #: A direct prompt; overrides ``question`` and ``content``, which are then not sent.
    prompt: str | None
    #: The LLM, e.g. ``qwen-plus`` (None: the application's default).
    model: str | None
    #: Moderation of the answer: ``none`` or ``loose`` (blocks restricted content).
    csi_level: str | None
    #: Merged into the JSON body: for fields this package does not name.
    extra_body: dict[str, Any] | None
    #: Sent as HTTP headers with this request only.
    extra_headers: dict[str, str] | None


@dataclass(frozen=True)
class KnowledgeRequest:
    """A validated knowledge-llm request: the JSON body and the caller's extra headers."""

    payload: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    #: Sent with ``options.stream: true``.
    stream: bool = False
    #: The model asked for (None: the application's default).
    model: str | None = None

    def parse(self, body: Any, headers: Mapping[str, str]) -> KnowledgeResult:
        """The answer to this request in a decoded, error-free body."""
        return parse_knowledge_body(body, headers, self.model)


def build_knowledge_request(
    *,
    question: Any = None,
    content: Any = None,
    type: Any = "text",
    prompt: Any = None,
    model: Any = None,
    csi_level: Any = None,
    stream: bool = False,
    extra_body: Mapping[str, Any] | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> KnowledgeRequest:
    """Validate a call and build its body; only the fields that are set are sent.

    ``prompt`` overrides ``question`` and ``content`` (docs/service-facts.md, "knowledge-llm"),
    so with a prompt they are checked but not sent.
    """
    checked_content = _check_fields(question, content, type, prompt, model, csi_level)
    body: dict[str, Any] = {"prompt": prompt} if prompt is not None else {"question": question}
    if prompt is None:
        _set(body, "type", type)
        _set(body, "content", checked_content)
    _set(body, "model", model)
    _set(body, "csi_level", csi_level)
    if extra_body:
        check_extra_body(extra_body, _KNOWLEDGE_ARGUMENTS)
        body.update(extra_body)
    if stream or "options" in body:
        body["options"] = _options(body.get("options"), stream)
    headers = dict(extra_headers or {})
    if not is_header_map(headers):
        raise RequestValidationError("extra_headers", shown_headers(headers), HEADER_MAP)
    return KnowledgeRequest(body, headers, stream, model)


#: Request fields ``extra_body`` may not set, as for chat (``_chat_wire._CHAT_ARGUMENTS``).
_KNOWLEDGE_ARGUMENTS = {
    **{f: f"pass {f}=..." for f in ("question", "prompt", "content", "type", "model", "csi_level")},
}


def _options(options: Any, stream: bool) -> dict[str, Any]:
    """``options`` with ``stream`` set for a stream; ``extra_body`` may not contradict it."""
    options = {} if options is None else options
    if not isinstance(options, Mapping):
        raise RequestValidationError("extra_body.options", options, "an object")
    if bool(options.get("stream", stream)) != stream:
        raise RequestValidationError(
            "extra_body.options.stream",
            options["stream"],
            f"{stream} or unset",
            "Call stream() for a stream, answer() for one answer.",
        )
    return {**options, "stream": True} if stream else dict(options)


def _check_fields(
    question: Any, content: Any, type: Any, prompt: Any, model: Any, csi_level: Any
) -> list[str] | None:
    """Raise ``RequestValidationError`` for the first bad field; the content as a list."""
    _optional_text("prompt", prompt)
    _optional_text("question", question)
    if prompt is None and question is None:
        raise RequestValidationError(
            "question", None, "a non-empty string", "Pass question=... (or prompt=...)."
        )
    checked_content = _content(content)
    _optional_text("type", type)
    _optional_text("model", model)
    if csi_level is not None and csi_level not in CSI_LEVELS:
        raise RequestValidationError("csi_level", csi_level, " or ".join(CSI_LEVELS))
    return checked_content


def _set(body: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        body[key] = value


def _optional_text(name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise RequestValidationError(name, value, "a non-empty string (or None: not sent)")


def _content(content: Any) -> list[str] | None:
    if content is None:
        return None
    if isinstance(content, (str, bytes)) or not isinstance(content, Sequence):
        raise RequestValidationError("content", content, "a list of strings (the passages)")
    if not content:
        raise RequestValidationError(
            "content", content, "a non-empty list of strings", "Pass None to send no passages."
        )
    for position, item in enumerate(content):
        if not isinstance(item, str):
            raise RequestValidationError(f"content[{position}]", item, "a string")
    return list(content)


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class KnowledgeResult:
    """A knowledge-llm answer.

    ``answer`` is the text of every ``result.data`` entry that has one, joined; ``data`` keeps
    every entry; ``raw`` is the body (for a stream: its last frame); ``model`` is the model
    that was asked for (None: the application's default).
    """

    answer: str
    request_id: str | None = None
    latency: float | None = None
    data: list[dict[str, Any]] = field(default_factory=list)
    raw: Any = None
    model: str | None = None


def parse_knowledge_body(
    body: Any, headers: Mapping[str, str] | None = None, model: str | None = None
) -> KnowledgeResult:
    """The answer in a decoded, error-free body; ``ResponseDecodeError`` if it has none."""
    entries = _data_entries(body)
    if entries is None:
        raise ResponseDecodeError(
            f"the answer has no result.data list: {str(body)[:200]}", body=str(body)[:200]
        )
    return KnowledgeResult(
        answer=_answer_text(entries),
        request_id=request_id_of(body, headers),
        latency=_latency(body),
        data=[e for e in entries if isinstance(e, dict)],
        raw=body,
        model=model,
    )


def _data_entries(body: Any) -> list[Any] | None:
    result = body.get("result") if isinstance(body, dict) else None
    data = result.get("data") if isinstance(result, dict) else None
    return data if isinstance(data, list) else None


def _answer_text(entries: list[Any]) -> str:
    return "".join(
        e["answer"] for e in entries if isinstance(e, dict) and isinstance(e.get("answer"), str)
    )


def _latency(body: Any) -> float | None:
    value = body.get("latency") if isinstance(body, dict) else None
    if isinstance(value, bool):
        return None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- streams


class KnowledgeStreamDecoder:
    """Bytes of a knowledge-llm stream in, new pieces of the answer out.

    Frames are split by ``_framing`` (the same rules as chat streams). A frame whose answer
    starts with everything received so far is taken as the whole answer so far (cumulative)
    and yields only its new tail; any other frame is the next piece.
    """

    __slots__ = (
        "_done",
        "_extra",
        "_framer",
        "_frames",
        "_id_from_body",
        "_length",
        "latency",
        "model",
        "raw",
        "request_id",
    )

    def __init__(
        self,
        request_id: str | None = None,
        model: str | None = None,
        *,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self._framer = Framer(max_event_bytes)
        self._done = False
        self._frames: list[str] = []
        self._length = 0
        self._extra: list[dict[str, Any]] = []
        #: The response header's id until a frame names one (the body's id wins).
        self.request_id = request_id
        self._id_from_body = False
        self.latency: float | None = None
        self.raw: Any = None
        self.model = model

    @property
    def done(self) -> bool:
        """Whether ``[DONE]`` was received."""
        return self._done

    @property
    def finished(self) -> bool:
        """Whether the answer is complete (``[DONE]``: frames carry no other end marker)."""
        return self._done

    @property
    def answer(self) -> str:
        """The answer received so far."""
        if len(self._frames) > 1:
            self._frames[:] = ["".join(self._frames)]  # joined once per read, not per frame
        return self._frames[0] if self._frames else ""

    def feed(self, data: bytes) -> Iterator[str]:
        """The new pieces of the answer completed by ``data``; raises a frame's error."""
        if self._done:
            return iter(())
        return self._pieces(self._framer.feed(data))

    def finish(self) -> Iterator[str]:
        """The last pieces at the end of the body; raises if it ends inside a frame or is empty."""
        if not self._done:
            yield from self._pieces(self._framer.flush())
        if self._framer.cut_short:
            raise self.broken(StreamError("the stream ended in the middle of a frame"))
        if self.raw is None and not self._done:
            raise ResponseDecodeError("the stream ended before any answer frame")

    def feed_body(self, body: Any) -> list[str]:
        """The answer of a service that replied to a stream request with one JSON body."""
        parse_knowledge_body(body)  # a body without result.data is a decode error
        pieces = [piece for piece in [self._piece("", body)] if piece]
        self._done = True
        return pieces

    def result(self) -> KnowledgeResult:
        """The ``KnowledgeResult`` of everything received so far."""
        return KnowledgeResult(
            answer=self.answer,
            request_id=self.request_id,
            latency=self.latency,
            data=[{"answer": self.answer, "type": "text"}, *self._extra],
            raw=self.raw,
            model=self.model,
        )

    def broken(self, cause: OpenSearchLLMError) -> OpenSearchLLMError:
        """The error to raise for ``cause``: itself if no text came yet, else a ``StreamError``."""
        return broken_stream(cause, self.result()) if self.answer else cause

    def _pieces(self, frames: list[Frame]) -> Iterator[str]:
        for frame in frames:
            if self._done:
                return
            values, self._done = parse_event_data(frame.data)
            for value in values:
                piece = self._piece(frame.event, value)
                if piece:
                    yield piece

    def _piece(self, event: str, frame: Any) -> str:
        if event.lower() == "error":
            raise event_error(frame)
        if not isinstance(frame, dict):
            raise ResponseDecodeError(f"a stream frame is not an object: {str(frame)[:200]}")
        error = error_from_body(200, frame)
        if error is not None:
            raise error
        self.raw = frame
        if not self._id_from_body and (found := request_id_of(frame)):
            self.request_id, self._id_from_body = found, True
        self.latency = _latency(frame) if "latency" in frame else self.latency
        entries = _data_entries(frame) or []
        self._keep_extra(entries)
        text = _answer_text(entries)
        # Shorter than what came: it cannot repeat it, it is the next piece.
        piece = text if len(text) < self._length else new_text(self.answer, text)
        if piece:
            self._frames.append(piece)
            self._length += len(piece)
        return piece

    def _keep_extra(self, entries: list[Any]) -> None:
        for entry in entries:
            if isinstance(entry, dict) and "answer" not in entry and entry not in self._extra:
                self._extra.append(entry)


def new_text(received: str, frame_text: str) -> str:
    """The text a frame adds: its tail if it repeats everything received (cumulative), else all."""
    if received and frame_text.startswith(received):
        return frame_text[len(received) :]
    return frame_text


# --------------------------------------------------------------------------- AccessKey signature


@dataclass(frozen=True, init=False)
class AccessKeyCredentials:
    """An AccessKey pair for the ``OPENSEARCH`` signature; the secret never shows in a repr.

    Example::

        auth = AccessKeyCredentials("LTAI...", "secret")
        KnowledgeClient(host=..., app="my_app", auth=auth)
    """

    access_key_id: str
    access_key_secret: SecretStr = field(repr=False)

    def __init__(self, access_key_id: str, access_key_secret: str | SecretStr) -> None:
        secret = (
            access_key_secret
            if isinstance(access_key_secret, SecretStr)
            else SecretStr(access_key_secret)
        )
        if not isinstance(access_key_id, str) or not access_key_id.strip():
            raise RequestValidationError("access_key_id", access_key_id, "a non-empty string")
        if not isinstance(secret.get_secret_value(), str) or not secret.get_secret_value():
            raise RequestValidationError("access_key_secret", secret, "a non-empty string")
        object.__setattr__(self, "access_key_id", access_key_id)
        object.__setattr__(self, "access_key_secret", secret)


def content_md5(body: bytes) -> str:
    """The ``Content-MD5`` header: the hex MD5 of the exact body bytes ("" for no body)."""
    return hashlib.md5(body).hexdigest() if body else ""


def signature_date(moment: datetime) -> str:
    """The ``Date`` header: UTC, ISO 8601 to the second, e.g. ``2019-02-25T10:09:57Z``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_headers(headers: Mapping[str, str]) -> str:
    """Each non-empty ``x-opensearch-*`` header as ``name:value`` + newline, lower-cased, sorted."""
    chosen = {
        name.lower(): str(value).strip()
        for name, value in headers.items()
        if name.lower().startswith(SIGNED_HEADER_PREFIX) and str(value).strip()
    }
    return "".join(f"{name}:{chosen[name]}\n" for name in sorted(chosen))


def canonical_resource(url: str) -> str:
    """The URL's path, percent-encoded except ``/``, and its query sorted by name."""
    parts = urlsplit(url)
    path = quote(parts.path or "/", safe="/%")
    pairs = sorted(parse_qsl(parts.query, keep_blank_values=True))
    query = "&".join(
        quote(name, safe="") + (f"={quote(value, safe='')}" if value else "")
        for name, value in pairs
    )
    return f"{path}?{query}" if query else path


def string_to_sign(
    method: str, md5: str, content_type: str, date: str, headers: str, resource: str
) -> str:
    """Method, Content-MD5, Content-Type and Date, each + newline; canonical headers; resource."""
    return f"{method.upper()}\n{md5}\n{content_type}\n{date}\n{headers}{resource}"


def signature(secret: SecretStr, text: str) -> str:
    """``base64(hmac-sha1(secret, text))`` over UTF-8."""
    digest = hmac.new(secret.get_secret_value().encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signed_headers(
    credentials: AccessKeyCredentials,
    *,
    method: str,
    url: str,
    body: bytes,
    date: str,
    nonce: str,
    headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The headers of an ``OPENSEARCH``-signed request.

    ``headers`` are the other headers the request carries: their ``x-opensearch-*`` ones are
    signed (a caller's own ``X-Opensearch-Nonce`` wins over ``nonce``).
    """
    given = headers or {}
    signed = {k: v for k, v in given.items() if k.lower().startswith(SIGNED_HEADER_PREFIX)}
    if not any(name.lower() == NONCE_HEADER.lower() for name in signed):
        signed[NONCE_HEADER] = nonce
    md5 = content_md5(body)
    canonical = canonical_headers(signed)
    resource = canonical_resource(url)
    text = string_to_sign(method, md5, KNOWLEDGE_CONTENT_TYPE, date, canonical, resource)
    return {
        **signed,
        "Content-MD5": md5,
        "Content-Type": KNOWLEDGE_CONTENT_TYPE,
        "Date": date,
        "Authorization": f"{SIGNATURE_SCHEME} {credentials.access_key_id}:"
        + signature(credentials.access_key_secret, text),
    }


# --------------------------------------------------------------------------- settings

#: ``"bearer"`` (the API key) or an AccessKey pair for the ``OPENSEARCH`` signature.
KnowledgeAuth = Literal["bearer"] | AccessKeyCredentials


def credentials_from(auth: Any) -> AccessKeyCredentials | None:
    """The AccessKey pair ``auth`` names, or None for ``"bearer"``; else a validation error."""
    if isinstance(auth, AccessKeyCredentials):
        return auth
    if auth == "bearer":
        return None
    # Never echo the value: a key or a secret passed here by mistake must not reach a log.
    raise RequestValidationError(
        "auth", f"<{type(auth).__name__}>", "'bearer' or AccessKeyCredentials(id, secret)"
    )


def check_knowledge_settings(
    *,
    app: Any,
    host: str | None,
    auth: KnowledgeAuth,
    content: Sequence[str] | None = None,
    params: KnowledgeParams | None = None,
) -> None:
    """Raise ``RequestValidationError`` for a bad app, host, auth, fixed content or parameter.

    For construction time: the key is not looked up (a missing key is reported on the first
    call, as for chat).
    """
    resolve_app(app)
    resolve_host(host)
    credentials_from(auth)
    build_knowledge_request(question="?", content=content, **(params or {}))


def knowledge_passages(*groups: Iterable[str]) -> list[str] | None:
    """The passages to send: every group's texts in order, without blank ones; None if none.

    A blank passage carries nothing for the answer, and the service rejects empty content.
    """
    kept = [text for group in groups for text in group if text.strip()]
    return kept or None
