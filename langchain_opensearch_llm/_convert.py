"""Pure conversions between LangChain objects and the core client's OpenAI-style wire dicts.

Inbound (LangChain → wire): messages and their content blocks. Outbound (wire → LangChain):
completions, stream chunks, tool calls, usage and model profiles. Nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from langchain_core.language_models import ModelProfile as LCModelProfile
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    InvalidToolCall,
    SystemMessage,
    ToolCall,
    ToolCallChunk,
    ToolMessage,
)
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from opensearch_llm import ModelProfile as CoreModelProfile

#: ``response_metadata["model_provider"]`` and ``ls_provider`` of every message we build.
PROVIDER = "opensearch_llm"

WireMessage = dict[str, Any]
Part = dict[str, Any]

# Blocks that are model output or provider bookkeeping: never sent back to the service
# (the design: "never send reasoning back"; tool calls travel in ``tool_calls``).
_OUTPUT_ONLY_BLOCKS = frozenset(
    {
        "reasoning",
        "reasoning_content",
        "thinking",
        "redacted_thinking",
        "tool_call",
        "tool_call_chunk",
        "invalid_tool_call",
        "tool_use",
        "server_tool_call",
        "server_tool_call_chunk",
        "server_tool_result",
        "function_call",
        "non_standard",
        "citation",
        "refusal",
    }
)
# OpenAI / DashScope content parts passed through unchanged in user messages.
_PASSTHROUGH_PARTS = frozenset({"image_url", "video_url", "input_audio", "video"})


# --------------------------------------------------------------------------- inbound


def messages_to_wire(messages: Sequence[BaseMessage]) -> list[WireMessage]:
    """The wire dicts of ``messages``, in order, with one leading system message at most."""
    return merge_system_messages([message_to_wire(message) for message in messages])


def merge_system_messages(wire: list[WireMessage]) -> list[WireMessage]:
    """``wire`` with every system message merged into one leading system message.

    The service takes a system message only as ``messages[0]`` (api-docs 000), while LangChain
    agents may add one later; its text is appended to the leading system prompt.
    """
    systems = [message for message in wire if message["role"] == "system"]
    if not systems or (len(systems) == 1 and wire[0] is systems[0]):
        return wire
    merged: WireMessage = {
        "role": "system",
        "content": "\n\n".join(str(message["content"]) for message in systems),
    }
    return [merged, *(message for message in wire if message["role"] != "system")]


def wire_tool_choice(choice: str | bool | Mapping[str, Any], tool_names: Sequence[str]) -> Any:
    """The wire ``tool_choice`` for LangChain's spellings.

    ``"auto"`` and ``"none"`` pass through; ``"any"``, ``"required"`` and ``True`` force some
    call; a tool's name or a dict (``{"type": "function", "function": {"name": ...}}`` or
    ``{"name": ...}``) forces that tool.
    """
    if choice is True or choice in ("any", "required"):
        return "required"
    if choice in ("auto", "none"):
        return choice
    if isinstance(choice, str):
        if choice not in tool_names:
            raise ValueError(
                f"tool_choice {choice!r} is not one of the bound tools ({', '.join(tool_names)}) "
                "nor 'auto', 'none', 'any' or 'required'."
            )
        return _named_choice(choice)
    if isinstance(choice, Mapping):
        if isinstance(choice.get("function"), Mapping):
            return dict(choice)
        if isinstance(choice.get("name"), str):
            return _named_choice(choice["name"])
    raise ValueError(
        f"Unrecognized tool_choice {choice!r}: expected 'auto', 'none', 'any', 'required', "
        "True, a tool name, or {'type': 'function', 'function': {'name': ...}}."
    )


def _named_choice(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


def message_to_wire(message: BaseMessage) -> WireMessage:
    """One LangChain message as an OpenAI-style wire dict."""
    for cls, convert in _MESSAGE_CONVERTERS:
        if isinstance(message, cls):
            wire = convert(message)
            if message.name and "name" not in wire:
                wire["name"] = message.name
            return wire
    raise TypeError(
        f"Cannot send a {type(message).__name__} to the service: use SystemMessage, "
        "HumanMessage, AIMessage, ToolMessage or ChatMessage."
    )


def _system_to_wire(message: BaseMessage) -> WireMessage:
    return {"role": "system", "content": text_of(message.content, role="system")}


def _human_to_wire(message: BaseMessage) -> WireMessage:
    return {"role": "user", "content": user_content(message.content)}


def _tool_to_wire(message: BaseMessage) -> WireMessage:
    assert isinstance(message, ToolMessage)
    wire: WireMessage = {
        "role": "tool",
        "tool_call_id": message.tool_call_id,
        "content": text_of(message.content, role="tool"),
    }
    return wire


def _chat_to_wire(message: BaseMessage) -> WireMessage:
    assert isinstance(message, ChatMessage)
    if message.role == "assistant":
        return _ai_to_wire(AIMessage(content=message.content, name=message.name))
    if message.role == "user":
        return {"role": "user", "content": user_content(message.content)}
    return {"role": message.role, "content": text_of(message.content, role=message.role)}


def _ai_to_wire(message: BaseMessage) -> WireMessage:
    assert isinstance(message, AIMessage)
    wire: WireMessage = {"role": "assistant", "content": text_of(message.content, role="assistant")}
    calls = ai_tool_calls_to_wire(message)
    if calls:
        wire["tool_calls"] = calls
    return wire


# Order matters: the most specific class first (AIMessageChunk is an AIMessage, etc.).
_MESSAGE_CONVERTERS: tuple[tuple[type[BaseMessage], Callable[[BaseMessage], WireMessage]], ...] = (
    (SystemMessage, _system_to_wire),
    (HumanMessage, _human_to_wire),
    (AIMessage, _ai_to_wire),
    (ToolMessage, _tool_to_wire),
    (ChatMessage, _chat_to_wire),
)


def ai_tool_calls_to_wire(message: AIMessage) -> list[dict[str, Any]]:
    """The ``tool_calls`` of an assistant message: valid and invalid calls, in that order."""
    calls = [_tool_call_to_wire(call) for call in message.tool_calls]
    calls += [_invalid_tool_call_to_wire(call) for call in message.invalid_tool_calls]
    if not calls and isinstance(message.additional_kwargs.get("tool_calls"), list):
        # Messages built by hand in the OpenAI shape (``additional_kwargs["tool_calls"]``).
        calls = [_legacy_tool_call(raw) for raw in message.additional_kwargs["tool_calls"]]
    return calls


def _tool_call_to_wire(call: ToolCall) -> dict[str, Any]:
    return _wire_call(call.get("id"), call["name"], json.dumps(call["args"], ensure_ascii=False))


def _invalid_tool_call_to_wire(call: InvalidToolCall) -> dict[str, Any]:
    return _wire_call(call.get("id"), call.get("name") or "", call.get("args") or "")


def _legacy_tool_call(raw: Mapping[str, Any]) -> dict[str, Any]:
    function = raw.get("function") or {}
    return _wire_call(raw.get("id"), function.get("name") or "", function.get("arguments") or "")


def _wire_call(call_id: str | None, name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": call_id or "",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def text_of(content: str | list[str | dict[str, Any]], *, role: str) -> str:
    """The text of ``content`` for roles that take plain text (system, assistant, tool).

    Output-only blocks (reasoning, tool calls) are dropped; anything else that is not text
    cannot be sent in this role and raises ``ValueError``.
    """
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for block in content:
        if isinstance(block, str):
            texts.append(block)
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind not in _OUTPUT_ONLY_BLOCKS and role != "assistant":
            raise ValueError(
                f"A {role} message can only carry text; got a {kind!r} content block. "
                "Put images and other media in a HumanMessage."
            )
    return "".join(texts)


def user_content(content: str | list[str | dict[str, Any]]) -> str | list[Part]:
    """The content of a user message: a string, or a list of OpenAI content parts."""
    if isinstance(content, str):
        return content
    parts = [part for block in content if (part := content_part(block)) is not None]
    if len(parts) == 1 and parts[0]["type"] == "text":
        return str(parts[0]["text"])
    return parts


def content_part(block: str | Mapping[str, Any]) -> Part | None:
    """One user content block as an OpenAI content part; ``None`` for output-only blocks."""
    if isinstance(block, str):
        return {"type": "text", "text": block}
    kind = block.get("type")
    if kind in _OUTPUT_ONLY_BLOCKS:
        return None
    convert = _PART_CONVERTERS.get(str(kind))
    if convert is not None:
        return convert(block)
    if kind in _PASSTHROUGH_PARTS:
        return dict(block)
    raise ValueError(
        f"Unsupported content block type {kind!r}: the service takes text and images "
        "(OpenAI 'image_url' parts or LangChain 'image' blocks with a url or base64 data)."
    )


def _text_part(block: Mapping[str, Any]) -> Part:
    part: Part = {"type": "text", "text": str(block.get("text", ""))}
    if "cache_control" in block:  # Model Studio's explicit context cache marker
        part["cache_control"] = block["cache_control"]
    return part


def _image_url_part(block: Mapping[str, Any]) -> Part:
    image_url = block.get("image_url")
    if isinstance(image_url, str):
        image_url = {"url": image_url}
    if not isinstance(image_url, Mapping) or not image_url.get("url"):
        raise ValueError("An 'image_url' content part needs image_url.url.")
    return {"type": "image_url", "image_url": dict(image_url)}


def _image_part(block: Mapping[str, Any]) -> Part:
    """A LangChain v1 ``image`` block (url or base64), or its v0 ``source_type`` form."""
    url = block.get("url")
    data = block.get("base64") or block.get("data")
    if block.get("source_type") == "url" and not url:
        url = block.get("data")
        data = None
    if isinstance(url, str) and url:
        return {"type": "image_url", "image_url": {"url": url}}
    if isinstance(data, str) and data:
        mime = block.get("mime_type") or "image/jpeg"
        return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}
    raise ValueError(
        "An 'image' content block needs a 'url' or 'base64' data (file_id is not supported)."
    )


_PART_CONVERTERS: dict[str, Callable[[Mapping[str, Any]], Part]] = {
    "text": _text_part,
    "image_url": _image_url_part,
    "image": _image_part,
}


# --------------------------------------------------------------------------- outbound


def usage_to_metadata(usage: Mapping[str, Any] | None) -> UsageMetadata | None:
    """LangChain usage metadata from a wire ``usage`` dict (cached and reasoning details)."""
    if not usage:
        return None
    input_tokens = int(usage.get("prompt_tokens") or 0)
    output_tokens = int(usage.get("completion_tokens") or 0)
    total = usage.get("total_tokens")
    metadata = UsageMetadata(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=int(total) if total is not None else input_tokens + output_tokens,
    )
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    if cached is not None:
        metadata["input_token_details"] = InputTokenDetails(cache_read=int(cached))
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    if reasoning is not None:
        metadata["output_token_details"] = OutputTokenDetails(reasoning=int(reasoning))
    return metadata


def parse_tool_calls(
    raw_calls: Iterable[Mapping[str, Any]] | None,
) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    """Split wire ``tool_calls`` into valid calls (JSON-object arguments) and invalid ones."""
    valid: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for raw in raw_calls or ():
        function = raw.get("function") or {}
        name = function.get("name") or ""
        arguments = function.get("arguments") or ""
        call_id = raw.get("id") or None
        args, error = _parse_arguments(arguments)
        if args is None:
            invalid.append(invalid_tool_call(name=name, args=arguments, id=call_id, error=error))
        else:
            valid.append(tool_call(name=name, args=args, id=call_id))
    return valid, invalid


def _parse_arguments(arguments: str) -> tuple[dict[str, Any] | None, str | None]:
    if not arguments.strip():
        return {}, None  # tools without parameters
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError as exc:
        return None, f"Arguments are not valid JSON: {exc}"
    if not isinstance(value, dict):
        return None, f"Arguments must be a JSON object, got {type(value).__name__}"
    return value, None


def completion_metadata(
    completion: Mapping[str, Any], *, model: str | None = None
) -> dict[str, Any]:
    """The response-level ``response_metadata`` of a completion (shared by every choice).

    ``model`` is the requested model name, used when the service does not echo one.
    """
    metadata: dict[str, Any] = {"model_provider": PROVIDER, "model_name": model}
    for key, wire_key in (("model_name", "model"), ("id", "id"), ("request_id", "request_id")):
        if completion.get(wire_key) is not None:
            metadata[key] = completion[wire_key]
    if metadata["model_name"] is None:
        del metadata["model_name"]
    if completion.get("system_fingerprint"):
        metadata["system_fingerprint"] = completion["system_fingerprint"]
    return metadata


def ai_message_from_wire(
    message: Mapping[str, Any],
    response_metadata: Mapping[str, Any],
    usage: UsageMetadata | None = None,
) -> AIMessage:
    """An ``AIMessage`` from a wire ``choices[i].message``: text, reasoning, tool calls."""
    tool_calls, invalid = parse_tool_calls(message.get("tool_calls"))
    additional: dict[str, Any] = {}
    if message.get("reasoning_content"):
        additional["reasoning_content"] = message["reasoning_content"]
    return AIMessage(
        content=message.get("content") or "",
        additional_kwargs=additional,
        tool_calls=tool_calls,
        invalid_tool_calls=invalid,
        usage_metadata=usage,
        response_metadata=dict(response_metadata),
    )


def completion_to_result(completion: Mapping[str, Any], *, model: str | None = None) -> ChatResult:
    """A ``ChatResult`` with one generation per choice.

    Usage is for the whole response, so it goes on the first generation only (summing
    the generations' usage then gives the response's usage).
    """
    shared = completion_metadata(completion, model=model)
    usage = usage_to_metadata(completion.get("usage"))
    generations = [
        _generation(choice, shared, usage if position == 0 else None)
        for position, choice in enumerate(completion.get("choices") or ())
    ]
    llm_output = {**shared, "token_usage": completion.get("usage")}
    return ChatResult(generations=generations, llm_output=llm_output)


def _generation(
    choice: Mapping[str, Any], shared: Mapping[str, Any], usage: UsageMetadata | None
) -> ChatGeneration:
    info: dict[str, Any] = {"finish_reason": choice.get("finish_reason")}
    if choice.get("logprobs") is not None:
        info["logprobs"] = choice["logprobs"]
    message = ai_message_from_wire(choice.get("message") or {}, {**shared, **info}, usage)
    return ChatGeneration(message=message, generation_info=info)


class ToolCallChunkIndexer:
    """Assigns each streamed tool call a stable index so LangChain merges fragments right.

    The service marks later fragments with ``"id": ""`` and may repeat the name; some
    OpenAI-compatible servers reuse one index for parallel calls with different ids, or send
    no index at all. Fragments of one call share an index; a name or id is emitted once.
    """

    def __init__(self) -> None:
        self._by_wire: dict[int, int] = {}  # wire index -> our index of its current call
        self._ids: dict[int, str | None] = {}  # our index -> id seen
        self._named: set[int] = set()
        self._last: int | None = None

    def chunk(self, raw: Mapping[str, Any]) -> ToolCallChunk:
        """The ``ToolCallChunk`` of one wire tool-call fragment."""
        function = raw.get("function") or {}
        call_id = raw.get("id") or None
        index = self._index_of(raw.get("index"), call_id)
        name = function.get("name") or None
        if name is not None and index in self._named:
            name = None  # a repeated name would be concatenated by LangChain's merge
        elif name is not None:
            self._named.add(index)
        if call_id is not None and self._ids.get(index) == call_id:
            call_id = None
        elif call_id is not None:
            self._ids[index] = call_id
        return tool_call_chunk(
            name=name, args=function.get("arguments") or "", id=call_id, index=index
        )

    def _index_of(self, wire_index: Any, call_id: str | None) -> int:
        if not isinstance(wire_index, int):
            return self._index_without_wire_index(call_id)
        index = self._by_wire.get(wire_index)
        if index is None or (call_id is not None and self._ids.get(index) not in (None, call_id)):
            index = self._new_index()
            self._by_wire[wire_index] = index
        self._last = index
        return index

    def _index_without_wire_index(self, call_id: str | None) -> int:
        if self._last is None or (call_id is not None and self._ids.get(self._last) != call_id):
            self._last = self._new_index()
        return self._last

    def _new_index(self) -> int:
        index = len(self._ids) if not self._ids else max(self._ids) + 1
        self._ids[index] = None
        return index


class StreamConverter:
    """Turns the core's chunk dicts into ``ChatGenerationChunk`` objects for one stream.

    Only choice 0 is streamed (LangChain merges a stream into one message). Usage and the
    response metadata go on one closing chunk, built from the core's aggregate, so they
    appear exactly once however the service spreads them over chunks.
    """

    def __init__(self) -> None:
        self._tool_calls = ToolCallChunkIndexer()

    def convert(self, chunk: Mapping[str, Any]) -> ChatGenerationChunk | None:
        """The generation chunk for one wire chunk, or ``None`` when it carries nothing."""
        choice = _first_choice(chunk)
        if choice is None:
            return None
        delta = choice.get("delta") or {}
        content = delta.get("content") or ""
        additional: dict[str, Any] = {}
        if delta.get("reasoning_content"):
            additional["reasoning_content"] = delta["reasoning_content"]
        calls = [self._tool_calls.chunk(raw) for raw in delta.get("tool_calls") or ()]
        if not (content or additional or calls):
            return None
        message = AIMessageChunk(
            content=content,
            additional_kwargs=additional,
            tool_call_chunks=calls,
            response_metadata={"model_provider": PROVIDER},
        )
        return ChatGenerationChunk(message=message)

    def closing(
        self,
        completion: Mapping[str, Any],
        *,
        model: str | None = None,
        request_id: str | None = None,
    ) -> ChatGenerationChunk:
        """The last chunk: finish reason, ids, model name and usage, ``chunk_position='last'``."""
        metadata = completion_metadata(completion, model=model)
        if request_id and not metadata.get("request_id"):
            metadata["request_id"] = request_id
        choice = _first_choice(completion) or {}
        info: dict[str, Any] = {"finish_reason": choice.get("finish_reason")}
        if choice.get("logprobs") is not None:
            info["logprobs"] = choice["logprobs"]
        message = AIMessageChunk(
            content="",
            usage_metadata=usage_to_metadata(completion.get("usage")),
            response_metadata={**metadata, **info},
            chunk_position="last",
        )
        return ChatGenerationChunk(message=message, generation_info=info)


def _first_choice(payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for choice in payload.get("choices") or ():
        if choice.get("index", 0) == 0:
            return choice  # type: ignore[no-any-return]
    return None


def profile_to_langchain(profile: CoreModelProfile) -> LCModelProfile:
    """langchain-core's ``ModelProfile`` dict for one of the core's model profiles."""
    return LCModelProfile(
        max_input_tokens=profile.context_window,
        max_output_tokens=profile.max_output,
        text_inputs=True,
        text_outputs=True,
        image_inputs=profile.vision,
        image_url_inputs=profile.vision,
        pdf_inputs=False,
        audio_inputs=False,
        video_inputs=False,
        image_tool_message=False,
        pdf_tool_message=False,
        reasoning_output=profile.thinking != "none",
        tool_calling=profile.tools,
        tool_choice=profile.tools,
        tool_call_streaming=profile.tools,
        structured_output=profile.json_schema,
    )
