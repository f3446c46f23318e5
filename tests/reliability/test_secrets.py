"""The API key and the AccessKey secret never show: one test, every public class and path.

A recognisable key and AccessKey secret are used for everything: every public class of the
three packages is made, serialised every way it can be, called sync and async, streamed, and
made to fail (service errors, broken streams, resets, timeouts, bad input, a wrong key). Every
repr, str, dump, exception (str, repr, args, body, traceback), warning and DEBUG log record
(every logger, httpx and httpcore included), the emulator's request log and a cassette
recorded with the repository's settings, and every cassette in the repository, are scanned.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import vcr
from langchain_core.load import dumpd, dumps
from langchain_core.load.serializable import Serializable
from llama_index.core.base.llms.types import ChatMessage
from pydantic import BaseModel

from langchain_opensearch_llm import (
    ChatOpenSearchLLM,
    OpenSearchKnowledgeRetriever,
    OpenSearchKnowledgeRunnable,
)
from llama_index_opensearch_llm import OpenSearchKnowledgeRetriever as LIKnowledgeRetriever
from llama_index_opensearch_llm import OpenSearchKnowledgeSynthesizer, OpenSearchLLM
from opensearch_llm import (
    AccessKeyCredentials,
    AsyncChatClient,
    AsyncKnowledgeClient,
    AuthenticationError,
    ChatClient,
    KnowledgeClient,
)
from opensearch_llm._errors import masked
from opensearch_llm.emulator import Emulator, EmulatorServer, Fault
from tests.reliability.support import APP, CHAT_MODEL, PASSAGE, QUESTION, fast_backoff
from tests.reliability.surfaces import NODES

SECRET = "sk-LEAKCHECK-zqxj-WVUT"
AK_ID = "LTAI-reliability-id"
AK_SECRET = "LEAKCHECK-ak-yyzz-QRPO"
#: A leak of either secret, whole or in part: reprs cut long values in the middle, keeping the
#: start and the end (no hex digits, so no random id or signature matches by chance).
NEEDLES = ("LEAKCHECK", "zqxj-WVUT", "yyzz-QRPO", "WVUT", "QRPO")
ROOT = Path(__file__).resolve().parents[2]
MESSAGES = [{"role": "user", "content": QUESTION}]


# --------------------------------------------------------------------------- the scanner


@dataclass
class Scan:
    """Everything a caller, a log or a file could show, by where it came from."""

    seen: list[tuple[str, str]] = field(default_factory=list)

    def text(self, where: str, value: Any) -> None:
        """Keep ``value`` (its repr, unless it is text)."""
        self.seen.append((where, value if isinstance(value, str) else repr(value)))

    def obj(self, where: str, obj: Any) -> None:
        """Every way ``obj`` can be shown or serialised."""
        for how, show in _shows(obj).items():
            try:
                self.text(f"{where}: {how}", show())
            except Exception as error:  # a serialisation that fails must not leak either
                self.error(f"{where}: {how} failed", error)

    def error(self, where: str, error: BaseException) -> None:
        """An exception: str, repr, args, body, fields, partial result and traceback."""
        self.text(f"{where}: str", str(error))
        self.text(f"{where}: repr", repr(error))
        self.text(f"{where}: args", error.args)
        self.text(f"{where}: fields", vars(error))
        self.text(f"{where}: traceback", "".join(traceback.format_exception(error)))

    def leaks(self) -> list[str]:
        """Where a secret showed (other than masked on purpose: ``sk-…WVUT``)."""
        return [where for where, text in self.seen if any(n in _unmasked(text) for n in NEEDLES)]


def _unmasked(text: str) -> str:
    """``text`` without the masked forms of the secrets, which may show."""
    for secret in (SECRET, AK_SECRET):
        text = text.replace(masked(secret), "")
    return text


def _shows(obj: Any) -> dict[str, Callable[[], Any]]:
    shows: dict[str, Callable[[], Any]] = {"repr": lambda: repr(obj), "str": lambda: str(obj)}
    if hasattr(obj, "__dict__"):
        shows["vars"] = lambda: vars(obj)
    if isinstance(obj, BaseModel):
        shows["model_dump"] = obj.model_dump
        shows["model_dump_json"] = obj.model_dump_json
    for name in ("dict", "to_dict", "to_json"):  # LlamaIndex's serialisations
        if callable(getattr(obj, name, None)) and not isinstance(obj, dict):
            shows[name] = getattr(obj, name)
    if isinstance(obj, Serializable):
        shows["dumpd"] = lambda: dumpd(obj)
        shows["dumps"] = lambda: dumps(obj, pretty=True)
    return shows


class _Records(logging.Handler):
    def __init__(self, scan: Scan) -> None:
        super().__init__(logging.DEBUG)
        self.scan = scan
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.scan.text(f"log {record.name}", self.format(record))
        self.scan.text(f"log {record.name} args", record.args)


@pytest.fixture
def scan() -> Iterator[Scan]:
    """A scan that also receives every log record, every logger at DEBUG."""
    found = Scan()
    handler = _Records(found)
    names = ["", "httpx", "httpcore", "opensearch_llm", "langchain", "llama_index", "uvicorn"]
    loggers = [logging.getLogger(n) for n in {*names, *logging.root.manager.loggerDict}]
    saved = [(lg, lg.level, lg.disabled) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        lg.disabled = False
        if lg is logging.root or not lg.propagate:
            lg.addHandler(handler)
    try:
        yield found
    finally:
        for lg, level, disabled in saved:
            lg.setLevel(level)
            lg.disabled = disabled
            lg.removeHandler(handler)


# --------------------------------------------------------------------------- running calls

Call = Callable[[], Any]


async def _settle(result: Any) -> Any:
    """The value of a call: awaited, and streams read to the end."""
    if isinstance(result, Awaitable):
        result = await result
    if isinstance(result, AsyncIterator) or hasattr(result, "__aiter__"):
        return [item async for item in result]
    if isinstance(result, Iterator):
        return list(result)
    return result


async def run(scan: Scan, where: str, call: Call) -> None:
    """Run ``call``; scan what it returns, or the error it raises."""
    try:
        result = await _settle(call())
    except Exception as error:
        scan.error(where, error)
    else:
        scan.text(f"{where}: result", result)


def _fault(name: str, **params: Any) -> dict[str, str]:
    fault = Fault(name, **params)
    headers = {"X-Emulator-Fault": fault.name, "X-Emulator-Fault-After": str(fault.after)}
    if fault.delay is not None:
        headers["X-Emulator-Delay"] = str(fault.delay)
    return headers


FAILURES = {
    "503": _fault("503"),
    "reset": _fault("reset"),
    "error-frame": _fault("error-frame", after=3),
    "reset-mid-stream": _fault("reset-mid-stream", after=3),
    "html": _fault("html"),
    # A careless server quotes the Authorization header: a 401, a retried 503, a stream frame.
    "echo-auth": _fault("echo-auth", after=2),
    "echo-auth 503": {**_fault("echo-auth"), "X-Emulator-Status": "503"},
}


# --------------------------------------------------------------------------- the exercises


def _chat_clients(server: EmulatorServer) -> list[Any]:
    base = {"base_url": server.compatible_base_url, "max_retries": 1}
    return [
        fast_backoff(ChatClient(SECRET, **base)),
        fast_backoff(AsyncChatClient(SECRET, **base)),
        fast_backoff(ChatClient(SECRET, base_url=server.gateway_base_url, timeout=0.2)),
    ]


def _chat_calls(client: Any) -> dict[str, Call]:
    calls: dict[str, Call] = {
        "create": lambda: client.create(model=CHAT_MODEL, messages=MESSAGES),
        "stream": lambda: client.stream(model=CHAT_MODEL, messages=MESSAGES),
        "bad input": lambda: client.create(model=CHAT_MODEL, messages=MESSAGES, temperature=5),
        "timeout": lambda: client.create(
            model=CHAT_MODEL, messages=MESSAGES, extra_headers=_fault("slow-first-byte", delay=1)
        ),
    }
    for name, headers in FAILURES.items():
        calls[f"create {name}"] = lambda h=headers: client.create(
            model=CHAT_MODEL, messages=MESSAGES, extra_headers=h
        )
        calls[f"stream {name}"] = lambda h=headers: client.stream(
            model=CHAT_MODEL, messages=MESSAGES, extra_headers=h
        )
    return calls


class _BearerForEmulator(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Lets a signed (AccessKey) request reach the emulator, which checks Bearer keys only."""

    def __init__(self, emulator: Emulator) -> None:
        self.sync = emulator.transport()
        self.async_ = emulator.async_transport()

    def _rewritten(self, request: httpx.Request) -> httpx.Request:
        assert request.headers["authorization"].startswith("OPENSEARCH ")
        request.headers["authorization"] = "Bearer signed-request"
        return request

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.sync.handle_request(self._rewritten(request))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.async_.handle_async_request(self._rewritten(request))


def _knowledge_clients(server: EmulatorServer, emulator: Emulator) -> list[Any]:
    where = {"host": server.origin, "app": APP, "max_retries": 1}
    signed = {**where, "auth": AccessKeyCredentials(AK_ID, AK_SECRET)}
    bridge = _BearerForEmulator(emulator)
    clients = [
        KnowledgeClient(SECRET, **where),
        AsyncKnowledgeClient(SECRET, **where),
        KnowledgeClient(**signed),  # the emulator refuses the signature: a 401
        AsyncKnowledgeClient(**signed),
        KnowledgeClient(http_client=httpx.Client(transport=bridge), **signed),
        AsyncKnowledgeClient(http_client=httpx.AsyncClient(transport=bridge), **signed),
    ]
    return [fast_backoff(client) for client in clients]


def _knowledge_calls(client: Any) -> dict[str, Call]:
    calls: dict[str, Call] = {
        "answer": lambda: client.answer(QUESTION, [PASSAGE]),
        "stream": lambda: client.stream(QUESTION, [PASSAGE]),
        "no question": lambda: client.answer(None, [PASSAGE]),
        "blocked": lambda: client.answer(f"{QUESTION} [restricted]", csi_level="loose"),
    }
    for name in ("knowledge-errors", "reset-mid-stream", "error-frame", "echo-auth"):
        headers = _fault(name, after=3)
        calls[f"answer {name}"] = lambda h=headers: client.answer(QUESTION, extra_headers=h)
        calls[f"stream {name}"] = lambda h=headers: client.stream(QUESTION, extra_headers=h)
    return calls


def _langchain_objects(server: EmulatorServer) -> list[Any]:
    knowledge = {"host": server.origin, "app": APP, "max_retries": 0, "content": [PASSAGE]}
    signed = {**knowledge, "access_key_id": AK_ID, "access_key_secret": AK_SECRET}
    llm = ChatOpenSearchLLM(
        model=CHAT_MODEL, api_key=SECRET, base_url=server.compatible_base_url, max_retries=0
    )
    return [
        llm,
        llm.bind_tools([_weather]),
        llm.with_structured_output(_Weather),
        OpenSearchKnowledgeRetriever(api_key=SECRET, **knowledge),
        OpenSearchKnowledgeRetriever(**signed),
        OpenSearchKnowledgeRunnable(api_key=SECRET, **knowledge),
        OpenSearchKnowledgeRunnable(**signed),
    ]


def _weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


class _Weather(BaseModel):
    """The weather in a city."""

    city: str


def _runnable_calls(obj: Any) -> dict[str, Call]:
    value = {"question": QUESTION} if isinstance(obj, OpenSearchKnowledgeRunnable) else QUESTION
    calls: dict[str, Call] = {
        "invoke": lambda: obj.invoke(value),
        "ainvoke": lambda: obj.ainvoke(value),
        "stream": lambda: obj.stream(value),
        "astream": lambda: obj.astream(value),
    }
    if isinstance(obj, ChatOpenSearchLLM):
        for name, headers in FAILURES.items():
            calls[f"invoke {name}"] = lambda h=headers: obj.invoke(QUESTION, extra_headers=h)
            calls[f"astream {name}"] = lambda h=headers: obj.astream(QUESTION, extra_headers=h)
        calls["bad input"] = lambda: obj.invoke(QUESTION, temperature=5)
    return calls


def _llama_index_objects(server: EmulatorServer) -> list[Any]:
    knowledge = {"host": server.origin, "app": APP, "max_retries": 0}
    signed = {**knowledge, "auth": AccessKeyCredentials(AK_ID, AK_SECRET)}
    llm = OpenSearchLLM(
        model=CHAT_MODEL, api_key=SECRET, base_url=server.compatible_base_url, max_retries=0
    )
    return [
        llm,
        OpenSearchKnowledgeSynthesizer(api_key=SECRET, **knowledge),
        OpenSearchKnowledgeSynthesizer(api_key=SECRET, streaming=True, **knowledge),
        OpenSearchKnowledgeSynthesizer(**signed),
        LIKnowledgeRetriever(api_key=SECRET, content=[PASSAGE], **knowledge),
        LIKnowledgeRetriever(content=[PASSAGE], **signed),
    ]


def _llama_index_calls(obj: Any) -> dict[str, Call]:
    if isinstance(obj, OpenSearchLLM):
        history = [ChatMessage(role="user", content=QUESTION)]
        calls: dict[str, Call] = {
            "chat": lambda: obj.chat(history),
            "stream_chat": lambda: obj.stream_chat(history),
            "achat": lambda: obj.achat(history),
            "astream_chat": lambda: obj.astream_chat(history),
            "bad input": lambda: obj.chat(history, temperature=5),
        }
        for name, headers in FAILURES.items():
            calls[f"chat {name}"] = lambda h=headers: obj.chat(history, extra_headers=h)
            calls[f"astream_chat {name}"] = lambda h=headers: obj.astream_chat(
                history, extra_headers=h
            )
        return calls
    if isinstance(obj, OpenSearchKnowledgeSynthesizer):
        return {
            "synthesize": lambda: _synthesized(obj.synthesize(QUESTION, nodes=NODES)),
            "asynthesize": lambda: _asynthesized(obj.asynthesize(QUESTION, nodes=NODES)),
        }
    return {
        "retrieve": lambda: obj.retrieve(QUESTION),
        "aretrieve": lambda: obj.aretrieve(QUESTION),
    }


def _synthesized(response: Any) -> Any:
    gen = getattr(response, "response_gen", None)
    return list(gen) if gen is not None else response


async def _asynthesized(pending: Awaitable[Any]) -> Any:
    response = await pending
    if hasattr(response, "async_response_gen"):
        return [piece async for piece in response.async_response_gen()]
    return response


def _misuses(server: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, Call]:
    """Wrong keys, keys in the wrong place, keys from the environment, warnings."""
    wrong = Emulator(api_key="sk-the-right-one")
    origin = "http://emulator.local/compatible-mode/v1"

    def from_environment() -> list[Any]:
        monkeypatch.setenv("OPENSEARCH_LLM_API_KEY", SECRET)
        made = [
            ChatClient(base_url=server.compatible_base_url),
            ChatOpenSearchLLM(base_url=server.compatible_base_url),
            OpenSearchLLM(base_url=server.compatible_base_url),
        ]
        monkeypatch.delenv("OPENSEARCH_LLM_API_KEY")
        return made

    return {
        "wrong key": lambda: ChatClient(
            SECRET, base_url=origin, http_client=httpx.Client(transport=wrong.transport())
        ).create(model=CHAT_MODEL, messages=MESSAGES),
        "wrong key, async": lambda: AsyncChatClient(
            SECRET,
            base_url=origin,
            http_client=httpx.AsyncClient(transport=wrong.async_transport()),
        ).create(model=CHAT_MODEL, messages=MESSAGES),
        "key passed as auth": lambda: KnowledgeClient(host=server.origin, app=APP, auth=SECRET),
        "AccessKey without id": lambda: AccessKeyCredentials("", AK_SECRET),
        "unknown LangChain setting (a warning)": lambda: ChatOpenSearchLLM(
            api_key=SECRET, base_url=server.compatible_base_url, not_a_field=1
        ),
        "json_schema fallback (a warning)": lambda: ChatOpenSearchLLM(
            model="qwen-max", api_key=SECRET, base_url=server.compatible_base_url
        ).with_structured_output(_Weather, method="json_schema"),
        "key from the environment": from_environment,
    }


async def _exercise(
    scan: Scan, server: EmulatorServer, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> list[Any]:
    """Every exercise; the objects made, to be scanned and closed."""
    made: list[Any] = []
    groups: list[tuple[list[Any], Callable[[Any], dict[str, Call]]]] = [
        (_chat_clients(server), _chat_calls),
        (_knowledge_clients(server, emulator), _knowledge_calls),
        (_langchain_objects(server), _runnable_calls),
        (_llama_index_objects(server), _llama_index_calls),
    ]
    for objects, calls in groups:
        for obj in objects:
            scan.obj(type(obj).__name__, obj)
            for name, call in calls(obj).items():
                await run(scan, f"{type(obj).__name__} {name}", call)
            scan.obj(f"{type(obj).__name__} after use", obj)
        made += objects
    for name, call in _misuses(server, monkeypatch).items():
        await run(scan, name, call)
    scan.text("emulator request log", emulator.requests)
    return made


async def _record_cassette(server: EmulatorServer, path: Path) -> None:
    """A cassette recorded with the repository's settings (tests/knowledge), from every client."""
    recorder = vcr.VCR(record_mode="all", filter_headers=["authorization"])
    with recorder.use_cassette(str(path)):
        with ChatClient(SECRET, base_url=server.compatible_base_url) as chat:
            chat.create(model=CHAT_MODEL, messages=MESSAGES)
        async with AsyncChatClient(SECRET, base_url=server.gateway_base_url) as achat:
            await achat.create(model=CHAT_MODEL, messages=MESSAGES)
        with KnowledgeClient(SECRET, host=server.origin, app=APP) as knowledge:
            knowledge.answer(QUESTION, [PASSAGE])
        signed = AccessKeyCredentials(AK_ID, AK_SECRET)
        # The emulator refuses the signature; the request is recorded all the same.
        with (
            KnowledgeClient(host=server.origin, app=APP, auth=signed, max_retries=0) as kb,
            contextlib.suppress(AuthenticationError),
        ):
            kb.answer(QUESTION, [PASSAGE])


def _cassettes() -> list[Path]:
    roots = [ROOT / "cassettes", *ROOT.joinpath("tests").glob("**/cassettes")]
    return sorted({p for root in roots if root.is_dir() for p in root.rglob("*") if p.is_file()})


async def _close(objects: list[Any]) -> None:
    for obj in objects:
        for close in ("close", "aclose"):
            method = getattr(obj, close, None)  # a bound tool or structured runnable has none
            if method is not None:
                result = method()
                if isinstance(result, Awaitable):
                    await result


async def test_no_secret_shows_anywhere(
    scan: Scan,
    server: EmulatorServer,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        made = await _exercise(scan, server, emulator, monkeypatch)
        await _record_cassette(server, tmp_path / "recorded.yaml")
        await _close(made)
    for warning in caught:
        scan.text(f"warning {warning.category.__name__}", str(warning.message))
    for path in [tmp_path / "recorded.yaml", *_cassettes()]:
        scan.text(f"cassette {path.relative_to(path.anchor)}", path.read_text(errors="replace"))

    assert scan.leaks() == []
    # The scan saw what it should have: errors, logs, warnings, a cassette with the requests.
    kinds = {where.split(":")[0].split(" ")[0] for where, _ in scan.seen}
    assert {"log", "warning", "cassette", "ChatClient", "OpenSearchLLM"} <= kinds
    assert any("AuthenticationError" in text for _, text in scan.seen)
    assert any("StreamError" in text for _, text in scan.seen)
    assert any("httpcore" in where for where, _ in scan.seen)
    recorded = (tmp_path / "recorded.yaml").read_text()
    assert recorded.count("uri:") == 4 and "OPENSEARCH" not in recorded


@pytest.mark.parametrize(
    "make",
    [
        # The secret comes last: pydantic cuts long reprs in the middle, keeping the end.
        lambda: ChatOpenSearchLLM(temperature=5, api_key=SECRET),
        lambda: ChatOpenSearchLLM(region="mars", api_key=SECRET),
        lambda: OpenSearchKnowledgeRetriever(app="my app", host="http://h", api_key=SECRET),
        lambda: OpenSearchKnowledgeRunnable(
            app="my app", host="http://h", access_key_id=AK_ID, access_key_secret=AK_SECRET
        ),
        lambda: OpenSearchKnowledgeRetriever(app=APP, host="http://h", access_key_secret=AK_SECRET),
    ],
    ids=[
        "chat temperature",
        "chat region",
        "retriever app",
        "runnable app, AccessKey",
        "retriever AccessKey without id",
    ],
)
async def test_a_bad_langchain_setting_does_not_echo_the_key(
    scan: Scan, make: Callable[[], Any]
) -> None:
    await run(scan, "bad setting", make)
    assert [where for where, _ in scan.seen if where.startswith("bad setting")], "no error"
    assert scan.leaks() == []
