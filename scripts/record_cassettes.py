"""Write the cassettes in ``cassettes/``, or re-record them against the live service.

Each cassette is one exchange printed in the API docs (``api-docs/000``-``003``)::

    python -m scripts.record_cassettes                 # offline: from the api-docs samples
    python -m scripts.record_cassettes --live          # against the service (a key must be set)
    python -m scripts.record_cassettes --live --only compatible_stream_usage

Offline (the default; what is committed) every request is made by the package's own client
(``ChatClient`` / ``KnowledgeClient``), so each recorded request body is byte for byte what the
package sends. Each response is the sample the docs print for that request, served by an
``httpx.MockTransport`` that vcrpy records like any other transport. Where the docs print no
response (the tool-calling example), the response is composed in the documented shape; each
cassette's header says which.

Live (``--live``; the key comes from ``OPENSEARCH_LLM_API_KEY`` or ``DASHSCOPE_API_KEY``) the
same requests go to the service: Model Studio (``--region``, default Singapore, or
``--modelstudio-base-url``) for the streamed, tool-calling and error exchanges; an OpenSearch LLM
instance (``--opensearch-base-url``, default ``OPENSEARCH_LLM_BASE_URL``) for the compatible-mode
sample; an AI gateway (``--gateway-base-url``) for the envelope; knowledge-llm
(``--knowledge-host`` / ``OPENSEARCH_LLM_KNOWLEDGE_HOST`` and ``--app`` / ``OPENSEARCH_LLM_APP``).
An exchange whose endpoint is not given is skipped and its cassette kept. ``--model NAME=MODEL``
replaces an exchange's documented model (tests replay whatever model the cassette holds).

``--emulator`` records from the built-in emulator served on 127.0.0.1 instead (labelled so in
each header; the tool-calling exchange cannot be, as the emulator calls only tools the message
names). It exercises the live path end to end without a key: ``tests/cassettes`` does.

Secrets never reach a cassette: ``Authorization`` and every other credential header
(``filter_headers``, plus any ``x-acs-*`` / ``x-opensearch-*`` signature header) are dropped,
only ``content-type`` and ``accept`` of a request and ``content-type``, ``x-request-id`` and
``retry-after`` of a response are kept, and live URLs are rewritten to the documented
placeholder hosts. ``tests/cassettes/test_secrets.py`` scans every cassette for anything that
looks like a key.

Replay (tests): ``make_vcr()`` with ``record_mode="none"``; requests match on method, URL and
the parsed JSON body (``json_body``), so a body matches whatever the key order or spacing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import vcr
import yaml
from vcr.request import Request as VCRRequest

from opensearch_llm import AuthenticationError, ChatClient, ChatParams, KnowledgeClient
from opensearch_llm._config import (
    API_KEY_ENV_VARS,
    BASE_URL_ENV_VAR,
    KNOWLEDGE_APP_ENV_VAR,
    KNOWLEDGE_HOST_ENV_VAR,
    REGION_BASE_URLS,
)
from opensearch_llm.knowledge import KnowledgeParams

ROOT = Path(__file__).resolve().parent.parent
CASSETTES_DIR = ROOT / "cassettes"
RECORD_COMMAND = "python -m scripts.record_cassettes --live"

# --------------------------------------------------------------------------- where requests go

#: The documented placeholder endpoints cassettes are recorded under, whatever the live URL was.
OPENSEARCH_BASE_URL = "http://xxxx-cn-shanghai.opensearch.aliyuncs.com/compatible-mode/v1"
MODELSTUDIO_BASE_URL = REGION_BASE_URLS["singapore"]
GATEWAY_BASE_URL = "https://gateway.example.com/api/v1"
KNOWLEDGE_HOST = "http://opensearch.example.com"
KNOWLEDGE_APP = "my_app"
KNOWLEDGE_URL = f"{KNOWLEDGE_HOST}/v3/openapi/apps/{KNOWLEDGE_APP}/actions/knowledge-llm"

#: Offline recordings send this key; it is filtered out like any other.
OFFLINE_KEY = "offline-recording-key"
#: The error exchange sends a key the service rejects (api-docs 003 "Incorrect API key").
INVALID_KEY = "invalid-key-for-the-error-cassette"

# --------------------------------------------------------------------------- redaction

#: Headers that carry credentials; removed from every recorded request (vcrpy filter_headers).
SECRET_HEADERS: tuple[str, ...] = (
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-dashscope-api-key",
    "cookie",
)
#: Signature headers of Alibaba Cloud (``x-acs-*``) and of the OPENSEARCH scheme.
SECRET_HEADER_PREFIXES: tuple[str, ...] = ("x-acs-", "x-opensearch-")
#: The only headers a cassette keeps.
KEPT_REQUEST_HEADERS = frozenset({"content-type", "accept"})
KEPT_RESPONSE_HEADERS = frozenset({"content-type", "x-request-id", "retry-after"})


def _is_secret_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in SECRET_HEADERS or lowered.startswith(SECRET_HEADER_PREFIXES)


def scrub_request(request: VCRRequest) -> VCRRequest:
    """Drop every header but ``content-type`` and ``accept`` (credentials first of all)."""
    for name in list(request.headers):
        if _is_secret_header(name) or name.lower() not in KEPT_REQUEST_HEADERS:
            del request.headers[name]
    return request


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Keep ``content-type``, ``x-request-id`` and ``retry-after``; drop cookies and the rest."""
    response["headers"] = {
        name: values
        for name, values in response["headers"].items()
        if name.lower() in KEPT_RESPONSE_HEADERS and not _is_secret_header(name)
    }
    return response


def canonical_urls(mapping: Mapping[str, str]) -> Callable[[VCRRequest], VCRRequest]:
    """A hook that rewrites each live URL prefix to its documented placeholder."""

    def rewrite(request: VCRRequest) -> VCRRequest:
        for live, placeholder in mapping.items():
            if live != placeholder and request.uri.startswith(live):
                request.uri = placeholder + request.uri[len(live) :]
        return request

    return rewrite


# --------------------------------------------------------------------------- matching


def parsed_body(body: bytes | str | None) -> Any:
    """A request body as JSON when it is JSON, else as bytes."""
    if body is None:
        return None
    raw = body.encode() if isinstance(body, str) else body
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def json_body(r1: VCRRequest, r2: VCRRequest) -> None:
    """A vcrpy matcher: the bodies are equal as parsed JSON (key order and spacing ignored)."""
    first, second = parsed_body(r1.body), parsed_body(r2.body)
    if first != second:
        raise AssertionError(f"request bodies differ:\n  {first!r}\n  {second!r}")


class _Dumper(yaml.SafeDumper):
    """YAML with multi-line strings (SSE bodies) as literal blocks, one frame per line."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None
    )


_Dumper.add_representer(str, _represent_str)


class ReadableYAML:
    """A vcrpy serializer: plain YAML, with streamed bodies readable frame by frame."""

    @staticmethod
    def serialize(cassette: dict[str, Any]) -> str:
        """The cassette as YAML text."""
        text: str = yaml.dump(cassette, Dumper=_Dumper, width=1_000_000, allow_unicode=True)
        return text

    @staticmethod
    def deserialize(text: str) -> dict[str, Any]:
        """The cassette from YAML text (comments ignored)."""
        loaded: dict[str, Any] = yaml.safe_load(text)
        return loaded


def make_vcr(
    record_mode: str = "none",
    library: Path = CASSETTES_DIR,
    *,
    match_on: Sequence[str] = ("method", "scheme", "host", "port", "path", "query", "json_body"),
    matchers: Mapping[str, Callable[[VCRRequest, VCRRequest], None]] | None = None,
    url_map: Mapping[str, str] | None = None,
) -> vcr.VCR:
    """The one vcrpy configuration for recording and replaying these cassettes."""
    recorder = vcr.VCR(
        cassette_library_dir=str(library),
        record_mode=record_mode,
        match_on=tuple(match_on),
        filter_headers=list(SECRET_HEADERS),
        before_record_request=[canonical_urls(url_map or {}), scrub_request],
        before_record_response=scrub_response,
        decode_compressed_response=True,
    )
    recorder.register_serializer("yaml", ReadableYAML)
    recorder.register_matcher("json_body", json_body)
    for name, matcher in (matchers or {}).items():
        recorder.register_matcher(name, matcher)
    return recorder


# --------------------------------------------------------------------------- the exchanges

SYSTEM_ROBOT = {"role": "system", "content": "You are a robot assistant"}
SYSTEM_HELPFUL = {"role": "system", "content": "You are a helpful assistant."}
#: api-docs 000, "Quick start".
OPENSEARCH_MESSAGES = [
    SYSTEM_ROBOT,
    {"role": "user", "content": "Recommend 1 science fiction book"},
]
#: api-docs 003, the OpenAI SDK, HTTP and error samples.
WHO_ARE_YOU = [SYSTEM_HELPFUL, {"role": "user", "content": "Who are you?"}]
#: api-docs 001, "Request example".
GATEWAY_MESSAGES = [{"role": "user", "content": "Hello!"}]
GATEWAY_PARAMS: ChatParams = {"max_tokens": 2048, "temperature": 1.0}
#: api-docs 002, "Sample request" 1.
KNOWLEDGE_QUESTION = "The question that is asked by the user."
KNOWLEDGE_CONTENT = ["Candidate content 1", "Candidate content 2"]
KNOWLEDGE_PARAMS: KnowledgeParams = {"csi_level": "none"}

#: api-docs 003, "Tool calling example": the two tools as printed, except that ``required``
#: (printed beside ``parameters``, where the service ignores it) is inside ``parameters``.
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_current_time",
            "description": "Useful for when you want to know the current time.",
            "parameters": {},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Useful for querying the weather in a specific city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "string",
                        "description": (
                            "A city or county, such as Beijing, Hangzhou, or Yuhang District."
                        ),
                    }
                },
                "required": ["location"],
            },
        },
    },
]
#: One of the example queries the tool-calling sample suggests.
TOOL_QUESTION = "What is the weather in Beijing?"


def weather_tool(location: str) -> str:
    """The sample's simulated weather tool, as printed in api-docs 003."""
    return f"It is rainy in {location} today. "


def tool_message(call: Mapping[str, Any]) -> dict[str, Any]:
    """The ``tool`` message answering one tool call of the weather exchange."""
    arguments = json.loads(call["function"]["arguments"] or "{}")
    return {
        "role": "tool",
        "tool_call_id": call["id"],
        "name": call["function"]["name"],
        "content": weather_tool(str(arguments.get("location", ""))),
    }


@dataclass(frozen=True)
class Sample:
    """A documented response: status, JSON body (or SSE text) and content type."""

    body: Any
    status: int = 200
    content_type: str = "application/json"

    def response(self) -> httpx.Response:
        """The sample as an ``httpx.Response``."""
        content = self.body if isinstance(self.body, str) else compact(self.body)
        return httpx.Response(
            self.status, content=content.encode(), headers={"content-type": self.content_type}
        )


def compact(value: Any) -> str:
    """JSON as services send it: no spaces, keys in order."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def sse(chunks: Sequence[Mapping[str, Any]]) -> str:
    """SSE frames, one ``data:`` line per chunk, then ``data: [DONE]``."""
    return "".join(f"data: {compact(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"


@dataclass(frozen=True)
class Exchange:
    """One documented exchange: what to send (by running ``run``) and the printed response."""

    name: str
    title: str
    source: str
    dialect: str  # "opensearch" | "modelstudio" | "gateway" | "knowledge"
    model: str
    run: Callable[[Any, str], Any]
    samples: tuple[Sample, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)


def run_compatible_chat(client: ChatClient, model: str) -> dict[str, Any]:
    """api-docs 000: one non-streamed completion."""
    return client.create(model=model, messages=OPENSEARCH_MESSAGES)


def run_stream_usage(client: ChatClient, model: str) -> dict[str, Any]:
    """api-docs 003: a stream; the client asks for usage (``stream_options``) by default."""
    with client.stream(model=model, messages=WHO_ARE_YOU) as stream:
        for _ in stream:
            pass
    completion = stream.completion()
    if not completion.get("usage"):
        raise RuntimeError("the stream carried no usage chunk")
    return completion


def run_tool_calls(client: ChatClient, model: str) -> list[dict[str, Any]]:
    """api-docs 003: the tool-calling loop, two rounds: a tool call, then the answer."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": TOOL_QUESTION}]
    first = client.create(model=model, messages=messages, tools=TOOLS)
    message = first["choices"][0]["message"]
    calls = message.get("tool_calls") or []
    if not calls:
        raise RuntimeError(f"round 1 called no tool: {message!r}")
    assistant = {"role": "assistant", "content": message.get("content") or "", "tool_calls": calls}
    messages += [assistant, *(tool_message(call) for call in calls)]
    second = client.create(model=model, messages=messages, tools=TOOLS)
    if second["choices"][0]["message"].get("tool_calls"):
        raise RuntimeError("round 2 called a tool again; the exchange has two rounds")
    return [first, second]


def run_gateway(client: ChatClient, model: str) -> dict[str, Any]:
    """api-docs 001: a non-streamed completion through the AI gateway (enveloped)."""
    return client.create(model=model, messages=GATEWAY_MESSAGES, **GATEWAY_PARAMS)


def run_knowledge(client: KnowledgeClient, model: str) -> Any:
    """api-docs 002: summarise the candidate content into an answer."""
    params: KnowledgeParams = {**KNOWLEDGE_PARAMS, "model": model}
    return client.answer(KNOWLEDGE_QUESTION, KNOWLEDGE_CONTENT, **params)


def run_error(client: ChatClient, model: str) -> AuthenticationError:
    """api-docs 003: the error response to a request with a wrong key."""
    try:
        client.create(model=model, messages=WHO_ARE_YOU)
    except AuthenticationError as error:
        return error
    raise RuntimeError("the service accepted an invalid key")


def _tool_round_one() -> dict[str, Any]:
    call = {
        "id": "call_xxx",
        "type": "function",
        "function": {"name": "get_current_weather", "arguments": '{"location": "Beijing"}'},
    }
    return {
        "choices": [
            {
                "message": {"role": "assistant", "content": "", "tool_calls": [call]},
                "finish_reason": "tool_calls",
                "index": 0,
                "logprobs": None,
            }
        ],
        "object": "chat.completion",
        "usage": {"prompt_tokens": 232, "completion_tokens": 20, "total_tokens": 252},
        "created": 1715252778,
        "system_fingerprint": None,
        "model": "qwen-plus",
        "id": "chatcmpl-xxx",
    }


def _tool_round_two() -> dict[str, Any]:
    return {
        "choices": [
            {
                "message": {"role": "assistant", "content": "It is rainy in Beijing today."},
                "finish_reason": "stop",
                "index": 0,
                "logprobs": None,
            }
        ],
        "object": "chat.completion",
        "usage": {"prompt_tokens": 278, "completion_tokens": 8, "total_tokens": 286},
        "created": 1715252779,
        "system_fingerprint": None,
        "model": "qwen-plus",
        "id": "chatcmpl-yyy",
    }


def _stream_chunk(delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
    choices = []
    if delta is not None:
        full = {"content": "", "function_call": None, "role": None, "tool_calls": None, **delta}
        choices = [{"delta": full, "finish_reason": finish, "index": 0, "logprobs": None}]
    return {
        "id": "chatcmpl-xxx",
        "choices": choices,
        "created": 1719286190,
        "model": "qwen-plus",
        "object": "chat.completion.chunk",
        "system_fingerprint": None,
        "usage": None,
    }


def _stream_usage_chunks() -> list[dict[str, Any]]:
    pieces = ["I am a", " large language model from", " Alibaba", " Cloud.", " My name is Qwen."]
    chunks = [_stream_chunk({"role": "assistant"})]
    chunks += [_stream_chunk({"content": piece}) for piece in pieces]
    chunks.append(_stream_chunk({}, "stop"))
    last = _stream_chunk(None)
    last["usage"] = {"completion_tokens": 16, "prompt_tokens": 22, "total_tokens": 38}
    return [*chunks, last]


EXCHANGES: tuple[Exchange, ...] = (
    Exchange(
        name="compatible_chat",
        title="Compatible mode, non-streamed: the OpenSearch LLM service's quick start",
        source="api-docs/000 (Quick start: the curl request and its sample response)",
        dialect="opensearch",
        model="ops-qwen-turbo",
        run=run_compatible_chat,
        samples=(
            Sample(
                {
                    "id": "fb4b3860e051ecad0b019971******",
                    "object": "chat.completion",
                    "created": 1749804786,
                    "model": "ops-qwen-turbo",
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": "The 'Three-Body Problem' series by Liu Cixin. "
                                "This is a story about......",
                            },
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 22, "completion_tokens": 48, "total_tokens": 70},
                }
            ),
        ),
    ),
    Exchange(
        name="compatible_stream_usage",
        title="Compatible mode, streamed, with usage in a last chunk whose choices are empty",
        source="api-docs/003 (OpenAI SDK > Streaming, stream_options include_usage: sample output)",
        dialect="modelstudio",
        model="qwen-plus",
        run=run_stream_usage,
        samples=(Sample(sse(_stream_usage_chunks()), content_type="text/event-stream"),),
        notes=(
            "The frames are the printed chunks as the OpenAI SDK dumps them (absent fields show",
            "as null), one `data:` line each, then `data: [DONE]` as in the HTTP sample.",
        ),
    ),
    Exchange(
        name="compatible_tool_calls",
        title="Compatible mode, a two-round tool call: get_current_weather, then the answer",
        source="api-docs/003 (Tool calling example: its tools, an example query, its weather tool)",
        dialect="modelstudio",
        model="qwen-plus",
        run=run_tool_calls,
        samples=(Sample(_tool_round_one()), Sample(_tool_round_two())),
        notes=(
            "The docs print no output for this example: both responses are composed in the",
            "documented chat.completion shape (finish_reason tool_calls, then stop).",
        ),
    ),
    Exchange(
        name="gateway_envelope",
        title="AI gateway: the chat.completion wrapped as {success, code, message, data}",
        source="api-docs/001 (Request example and Response example)",
        dialect="gateway",
        model="gpt-3.5-turbo",
        run=run_gateway,
        samples=(
            Sample(
                {
                    "success": True,
                    "code": "200",
                    "message": "successful",
                    "data": {
                        "id": "chatcmpl-123",
                        "object": "chat.completion",
                        "created": 1677652288,
                        "model": "gpt-3.5-turbo",
                        "choices": [
                            {
                                "index": 0,
                                "message": {
                                    "role": "assistant",
                                    "content": "Hello there! How can I assist you today?",
                                },
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
                    },
                }
            ),
        ),
        notes=(
            "{BASE_URL} is recorded as https://gateway.example.com. The documented request also",
            'sends "stream": false, the default, which the client leaves out.',
        ),
    ),
    Exchange(
        name="knowledge_llm",
        title="knowledge-llm: an answer summarised from candidate content",
        source="api-docs/002 (Sample request 1 and Sample response)",
        dialect="knowledge",
        model="Qwen",
        run=run_knowledge,
        samples=(
            Sample(
                {
                    "request_id": "abc123-ABC",
                    "latency": 10.0,
                    "result": {"data": [{"answer": "answer text", "type": "text"}]},
                    "errors": [],
                }
            ),
        ),
        notes=(
            "The printed sample is not valid JSON: comments, a stray ']' and trailing commas are",
            "removed, placeholders replaced by the parameter table's examples (request_id",
            '"abc123-ABC", answer "answer text"), errors[] empty as in a success. The request',
            "leaves out options.stream false, the default. {host} is recorded as",
            "opensearch.example.com.",
        ),
    ),
    Exchange(
        name="error_invalid_api_key",
        title="An error body: 401 invalid_api_key",
        source="api-docs/003 (HTTP API > Error response; Error codes: 401)",
        dialect="modelstudio",
        model="qwen-plus",
        run=run_error,
        samples=(
            Sample(
                {
                    "error": {
                        "message": "Incorrect API key provided. ",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
                status=401,
            ),
        ),
        notes=(
            "The request is the non-streamed HTTP sample, sent with a key the service rejects",
            "(the request's key is never recorded).",
        ),
    ),
)
EXCHANGES_BY_NAME: dict[str, Exchange] = {exchange.name: exchange for exchange in EXCHANGES}

#: The documented base URL of each dialect (the knowledge one is a host).
PLACEHOLDERS: dict[str, str] = {
    "opensearch": OPENSEARCH_BASE_URL,
    "modelstudio": MODELSTUDIO_BASE_URL,
    "gateway": GATEWAY_BASE_URL,
    "knowledge": KNOWLEDGE_HOST,
}


def cassette_path(name: str, library: Path = CASSETTES_DIR) -> Path:
    """The YAML file of the exchange ``name``."""
    return library / f"{name}.yaml"


# --------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class Endpoint:
    """Where one exchange is sent when recording, and what its URLs are recorded as."""

    base_url: str
    key: str
    app: str = KNOWLEDGE_APP
    transport: httpx.BaseTransport | None = None

    def url_map(self, dialect: str) -> dict[str, str]:
        """Live URL prefix -> documented placeholder prefix."""
        if dialect == "knowledge":
            live = f"{self.base_url.rstrip('/')}/v3/openapi/apps/{self.app}/"
            return {live: f"{KNOWLEDGE_HOST}/v3/openapi/apps/{KNOWLEDGE_APP}/"}
        return {self.base_url.rstrip("/"): PLACEHOLDERS[dialect]}


def offline_endpoint(exchange: Exchange) -> Endpoint:
    """The documented endpoint, answered in-process with the exchange's samples."""
    samples = iter(exchange.samples)

    def answer(_: httpx.Request) -> httpx.Response:
        return next(samples).response()

    key = INVALID_KEY if exchange.name == "error_invalid_api_key" else OFFLINE_KEY
    return Endpoint(PLACEHOLDERS[exchange.dialect], key, transport=httpx.MockTransport(answer))


def make_client(exchange: Exchange, endpoint: Endpoint) -> Any:
    """The core client of the exchange's dialect, on the endpoint's transport."""
    http = httpx.Client(transport=endpoint.transport) if endpoint.transport else None
    if exchange.dialect == "knowledge":
        return KnowledgeClient(
            endpoint.key, host=endpoint.base_url, app=endpoint.app, http_client=http, max_retries=0
        )
    return ChatClient(endpoint.key, base_url=endpoint.base_url, http_client=http, max_retries=0)


#: How each kind of recording is labelled in the cassette's header.
SOURCES: dict[str, tuple[str, ...]] = {
    "documented": (
        "Written offline: requests made by the package's client, responses the documented",
        "samples.",
    ),
    "live": ("Recorded live against the service; URLs rewritten to the documented placeholders.",),
    "emulator": (
        "Recorded against the built-in emulator (opensearch_llm.emulator), NOT the service;",
        "URLs rewritten to the documented placeholders.",
    ),
}


def header(exchange: Exchange, source: str) -> str:
    """The comment block that opens a cassette: what it is and where it came from."""
    lines = [
        exchange.title,
        f"Source: {exchange.source}.",
        *SOURCES[source],
        *(exchange.notes if source == "documented" else ()),
        "Credential headers are never recorded. Re-record against the live service with",
        f"`{RECORD_COMMAND} --only {exchange.name}` (see scripts/record_cassettes.py).",
    ]
    return "".join(f"# {line}\n" for line in lines)


def record(
    exchange: Exchange, endpoint: Endpoint, model: str, library: Path, source: str = "documented"
) -> Any:
    """Run the exchange under vcrpy and write its cassette (with its header) to ``library``."""
    target = cassette_path(exchange.name, library)
    with tempfile.TemporaryDirectory() as scratch:
        recorder = make_vcr("all", Path(scratch), url_map=endpoint.url_map(exchange.dialect))
        with (
            recorder.use_cassette(target.name) as cassette,
            _closing(make_client(exchange, endpoint)) as client,
        ):
            result = exchange.run(client, model)
        if source == "documented" and len(cassette) != len(exchange.samples):
            raise RuntimeError(
                f"{exchange.name}: {len(cassette)} requests for {len(exchange.samples)} samples"
            )
        text = (Path(scratch) / target.name).read_text(encoding="utf-8")
    library.mkdir(parents=True, exist_ok=True)
    target.write_text(header(exchange, source) + text, encoding="utf-8")
    return result


@contextmanager
def _closing(client: Any) -> Iterator[Any]:
    try:
        yield client
    finally:
        client.close()


def live_endpoints(args: argparse.Namespace) -> dict[str, Endpoint | None]:
    """The live endpoint of each dialect, or None where none was given."""
    key = next((os.environ[name] for name in API_KEY_ENV_VARS if os.environ.get(name)), None)
    if key is None:
        raise SystemExit("--live needs a key in " + " or ".join(API_KEY_ENV_VARS))
    modelstudio = args.modelstudio_base_url or REGION_BASE_URLS[args.region]
    return {
        "opensearch": Endpoint(args.opensearch_base_url, key) if args.opensearch_base_url else None,
        "modelstudio": Endpoint(modelstudio, key),
        "gateway": Endpoint(args.gateway_base_url, key) if args.gateway_base_url else None,
        "knowledge": (
            Endpoint(args.knowledge_host, key, app=args.app)
            if args.knowledge_host and args.app
            else None
        ),
    }


#: The key the emulator accepts when it stands in for the service.
EMULATOR_KEY = "emulator-recording-key"


@contextmanager
def emulator_endpoints() -> Iterator[dict[str, Endpoint | None]]:
    """The endpoints of an emulator served on 127.0.0.1 for the duration of the block."""
    from opensearch_llm.emulator import Emulator, serve

    with serve(Emulator(api_key=EMULATOR_KEY)) as server:
        chat = Endpoint(server.compatible_base_url, EMULATOR_KEY)
        yield {
            "opensearch": chat,
            "modelstudio": chat,
            "gateway": Endpoint(server.gateway_base_url, EMULATOR_KEY),
            "knowledge": Endpoint(server.origin, EMULATOR_KEY, app="emulator-app"),
        }


@contextmanager
def endpoints_for(source: str, args: argparse.Namespace) -> Iterator[dict[str, Endpoint | None]]:
    """Where each dialect is recorded from; documented exchanges make their own endpoint."""
    if source == "emulator":
        with emulator_endpoints() as endpoints:
            yield endpoints
    else:
        yield live_endpoints(args) if source == "live" else {}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--live", action="store_true", help="record against the live service")
    where.add_argument(
        "--emulator", action="store_true", help="record against the emulator (labelled so)"
    )
    parser.add_argument("--only", action="append", choices=sorted(EXCHANGES_BY_NAME))
    parser.add_argument("--out", type=Path, default=CASSETTES_DIR, help="cassette directory")
    parser.add_argument("--model", action="append", default=[], metavar="EXCHANGE=MODEL")
    parser.add_argument("--region", default="singapore", choices=sorted(REGION_BASE_URLS))
    parser.add_argument("--modelstudio-base-url")
    parser.add_argument("--opensearch-base-url", default=os.environ.get(BASE_URL_ENV_VAR))
    parser.add_argument("--gateway-base-url")
    parser.add_argument("--knowledge-host", default=os.environ.get(KNOWLEDGE_HOST_ENV_VAR))
    parser.add_argument("--app", default=os.environ.get(KNOWLEDGE_APP_ENV_VAR))
    return parser.parse_args(argv)


def model_overrides(pairs: Sequence[str]) -> dict[str, str]:
    """``EXCHANGE=MODEL`` pairs as a dict."""
    overrides = {}
    for pair in pairs:
        name, sep, model = pair.partition("=")
        if not sep or name not in EXCHANGES_BY_NAME or not model:
            raise SystemExit(f"--model {pair!r}: expected EXCHANGE=MODEL, e.g. knowledge_llm=Qwen")
        overrides[name] = model
    return overrides


def main(argv: Sequence[str] | None = None) -> int:
    """Write the selected cassettes; the exit status (1 if an exchange failed)."""
    args = parse_args(argv)
    models = model_overrides(args.model)
    source = "live" if args.live else "emulator" if args.emulator else "documented"
    status = 0
    with endpoints_for(source, args) as endpoints:
        for exchange in EXCHANGES:
            if args.only and exchange.name not in args.only:
                continue
            if source == "documented":
                endpoint: Endpoint | None = offline_endpoint(exchange)
            else:
                endpoint = endpoints.get(exchange.dialect)
            if endpoint is None:
                print(f"skipped {exchange.name}: no {exchange.dialect} endpoint", file=sys.stderr)
                continue
            if exchange.name == "error_invalid_api_key":
                endpoint = replace(endpoint, key=INVALID_KEY)
            model = models.get(exchange.name, exchange.model)
            try:
                record(exchange, endpoint, model, args.out, source)
            except Exception as error:  # one failed exchange must not stop the others
                print(f"FAILED {exchange.name}: {type(error).__name__}: {error}", file=sys.stderr)
                status = 1
                continue
            print(f"wrote {cassette_path(exchange.name, args.out)}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
