"""with_structured_output: function calling, JSON mode, JSON schema; invoked and streamed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from langchain_core.exceptions import OutputParserException
from pydantic import BaseModel, Field, ValidationError
from typing_extensions import TypedDict

from langchain_opensearch_llm import ChatOpenSearchLLM
from opensearch_llm.emulator import Emulator
from tests.langchain._helpers import MODES, invoke, stream
from tests.langchain.conftest import EMULATOR_BASE_URL

LLMFactory = Callable[..., ChatOpenSearchLLM]


class Person(BaseModel):
    """A person."""

    name: str = Field(description="Full name")
    age: int = Field(description="Age in years")


class PersonDict(TypedDict):
    """A person."""

    name: str
    age: int


PERSON_SCHEMA: dict[str, Any] = {
    "title": "Person",
    "description": "A person.",
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
PROMPT = "A person named Ann, aged 30"
SAMPLE = {"name": "Ann", "age": 30}  # what the emulator reads from PROMPT


def _body(emulator: Emulator) -> dict[str, Any]:
    body = emulator.requests[-1].json
    assert isinstance(body, dict)
    return body


@MODES
@pytest.mark.parametrize(
    "schema", [Person, PersonDict, PERSON_SCHEMA], ids=["pydantic", "typeddict", "json"]
)
async def test_function_calling(
    make_llm: LLMFactory, emulator: Emulator, mode: str, schema: Any
) -> None:
    structured = make_llm().with_structured_output(schema)
    result = await invoke(structured, PROMPT, mode)
    assert (result.model_dump() if isinstance(result, BaseModel) else result) == SAMPLE
    body = _body(emulator)
    assert body["tool_choice"] == {
        "type": "function",
        "function": {"name": "Person" if schema is not PersonDict else "PersonDict"},
    }
    assert body["parallel_tool_calls"] is False
    streamed = await stream(structured, PROMPT, mode)
    last = streamed[-1]
    assert (last.model_dump() if isinstance(last, BaseModel) else last) == SAMPLE


@MODES
async def test_json_schema_native(make_llm: LLMFactory, emulator: Emulator, mode: str) -> None:
    structured = make_llm().with_structured_output(Person, method="json_schema", strict=True)
    result = await invoke(structured, PROMPT, mode)
    assert isinstance(result, Person)
    assert result.model_dump() == SAMPLE
    body = _body(emulator)
    assert "tools" not in body
    assert body["response_format"]["type"] == "json_schema"
    spec = body["response_format"]["json_schema"]
    assert (spec["name"], spec["strict"]) == ("Person", True)
    assert spec["schema"]["required"] == ["name", "age"]
    chunks = await stream(structured, PROMPT, mode)
    assert chunks[-1] == Person(**SAMPLE)


@MODES
async def test_json_schema_falls_back_to_function_calling(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    llm = make_llm(model="qwen2.5-7b-instruct")
    with pytest.warns(UserWarning, match="falls back to method='function_calling'"):
        structured = llm.with_structured_output(PERSON_SCHEMA, method="json_schema")
    assert await invoke(structured, PROMPT, mode) == SAMPLE
    assert "response_format" not in _body(emulator)
    assert _body(emulator)["tools"][0]["function"]["name"] == "Person"


@MODES
async def test_json_mode(make_llm: LLMFactory, emulator: Emulator, mode: str) -> None:
    structured = make_llm().with_structured_output(method="json_mode")
    result = await invoke(structured, "Answer in json please", mode)
    assert result == {"reply": "You said: Answer in json please"}
    assert _body(emulator)["response_format"] == {"type": "json_object"}
    chunks = await stream(structured, "Answer in json please", mode)
    assert chunks[-1] == {"reply": "You said: Answer in json please"}


@MODES
async def test_include_raw(make_llm: LLMFactory, mode: str) -> None:
    structured = make_llm().with_structured_output(Person, include_raw=True)
    result = await invoke(structured, PROMPT, mode)
    assert result["parsed"] == Person(**SAMPLE)
    assert result["parsing_error"] is None
    assert result["raw"].tool_calls[0]["name"] == "Person"
    broken = make_llm().with_structured_output(Person, method="json_mode", include_raw=True)
    result = await invoke(broken, "Reply in json", mode)
    assert result["parsed"] is None
    assert isinstance(result["parsing_error"], OutputParserException)
    assert result["raw"].content.startswith('{"reply"')


@MODES
async def test_parse_errors_raise_without_include_raw(make_llm: LLMFactory, mode: str) -> None:
    structured = make_llm().with_structured_output(Person, method="json_mode")
    with pytest.raises(OutputParserException):
        await invoke(structured, "Reply in json", mode)


@MODES
async def test_thinking_models_are_not_forced(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    """The service rejects a forced tool call while the model thinks."""
    with pytest.warns(UserWarning, match="qwq-plus thinks"):
        structured = make_llm(model="qwq-plus").with_structured_output(Person, include_raw=True)
    result = await invoke(structured, PROMPT, mode)
    assert _body(emulator)["tool_choice"] == "auto"
    assert result["raw"].additional_kwargs["reasoning_content"]
    assert result["parsed"] == Person(**SAMPLE)


@MODES
@pytest.mark.parametrize("schema", [Person, PERSON_SCHEMA], ids=["pydantic", "json"])
async def test_a_thinking_model_answering_without_the_tool_is_an_error(
    make_llm: LLMFactory, mode: str, schema: Any
) -> None:
    """Not None (nor an empty stream): the caller learns which model and why.

    The prompt does not ask for a person, so the emulator, not forced, answers in text.
    """
    with pytest.warns(UserWarning, match="tool_choice='auto'"):
        structured = make_llm(model="qwq-plus").with_structured_output(schema)
    with pytest.raises(OutputParserException, match="qwq-plus answered without calling") as caught:
        await invoke(structured, "Ann is 30", mode)
    assert "You said: Ann is 30" in str(caught.value)
    with pytest.raises(OutputParserException, match="thinks"):
        await stream(structured, "Ann is 30", mode)
    with pytest.warns(UserWarning):
        raw = make_llm(model="qwq-plus").with_structured_output(schema, include_raw=True)
    result = await invoke(raw, "Ann is 30", mode)
    assert result["parsed"] is None
    assert isinstance(result["parsing_error"], OutputParserException)


def _sse(*frames: dict[str, Any]) -> bytes:
    body = b"".join(b"data: " + json.dumps(frame).encode() + b"\n\n" for frame in frames)
    return body + b"data: [DONE]\n\n"


@MODES
async def test_a_thinking_models_call_that_does_not_fit_the_schema_says_so(mode: str) -> None:
    """Streamed: the schema's error, not "answered without calling the tool"."""
    call = {"index": 0, "id": "c1", "type": "function"}
    call["function"] = {"name": "Person", "arguments": '{"name": "Ann"}'}
    frames = [
        {"choices": [{"index": 0, "delta": {"reasoning_content": "Hmm."}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, content=_sse(*frames), headers=headers)

    llm = ChatOpenSearchLLM(
        api_key="k",
        model="qwq-plus",
        base_url=EMULATOR_BASE_URL,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        http_async_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )
    with pytest.warns(UserWarning):
        structured = llm.with_structured_output(Person)
    for call_it in (invoke, stream):
        with pytest.raises(ValidationError, match="age"):
            await call_it(structured, "Ann", mode)


@MODES
async def test_thinking_switched_on_in_extra_body_is_taken_into_account(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    """The effective parameters decide (extra_body wins in the body), not only the field."""
    llm = make_llm(model="qwen-plus", extra_body={"enable_thinking": True})
    with pytest.warns(UserWarning, match="qwen-plus thinks"):
        structured = llm.with_structured_output(Person, include_raw=True)
    result = await invoke(structured, PROMPT, mode)
    assert _body(emulator)["tool_choice"] == "auto"
    assert _body(emulator)["enable_thinking"] is True
    assert result["parsed"] == Person(**SAMPLE)


@MODES
async def test_hybrid_models_thinking_by_default_are_switched_off(
    make_llm: LLMFactory, emulator: Emulator, mode: str
) -> None:
    structured = make_llm(model="qwen3-32b").with_structured_output(Person)
    chunks = await stream(structured, PROMPT, mode)
    assert chunks[-1] == Person(**SAMPLE)
    body = _body(emulator)
    assert body["enable_thinking"] is False
    assert body["tool_choice"] == {"type": "function", "function": {"name": "Person"}}


def test_model_is_not_mutated(make_llm: LLMFactory) -> None:
    llm = make_llm(temperature=0.5)
    before = llm.model_dump()
    for method in ("function_calling", "json_mode", "json_schema"):
        llm.with_structured_output(Person, method=method, include_raw=True)  # type: ignore[arg-type]
    llm.bind_tools([Person], tool_choice="any")
    assert llm.model_dump() == before


def test_bad_arguments(make_llm: LLMFactory) -> None:
    llm = make_llm()
    with pytest.raises(ValueError, match="needs a schema"):
        llm.with_structured_output(None)
    with pytest.raises(ValueError, match="Unrecognized method"):
        llm.with_structured_output(Person, method="xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unsupported arguments"):
        llm.with_structured_output(Person, tools=[])
