"""Pure conversions between LangChain objects and the core client's OpenAI-style wire dicts.

Inbound (LangChain → wire): messages and their content blocks. Outbound (wire → LangChain):
completions, stream chunks, tool calls, usage and model profiles. Nothing here does I/O; what
is not LangChain-specific (system-message merging, tool-call wire dicts, usage counts, argument
parsing, which choice is streamed) is the core's, in ``opensearch_llm._adapters``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

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
from opensearch_llm._adapters import (
    first_choice,
    legacy_tool_call,
    merge_system_messages,
    new_tool_call_id,
    parse_tool_arguments,
    usage_counts,
    wire_tool_call,
)
from opensearch_llm._adapters import wire_tool_choice as core_tool_choice

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


def wire_tool_choice(choice: str | bool | Mapping[str, Any], tool_names: Sequence[str]) -> Any:
    """The wire ``tool_choice`` for LangChain's spellings.

    ``"auto"`` and ``"none"`` pass through; ``"any"``, ``"required"`` and ``True`` force some
    call; a tool's name or a dict (``{"type": "function", "function": {"name": ...}}`` or
    ``{"name": ...}``) forces that tool.
    """
    if choice is True or choice in ("any", "required"):
        return "required"
    if isinstance(choice, str) and choice not in ("auto", "none") and choice not in tool_names:
        raise ValueError(
            f"tool_choice {choice!r} is not one of the bound tools ({', '.join(tool_names)}) "
            "nor 'auto', 'none', 'any' or 'required'."
        )
    if isinstance(choice, (str, Mapping)):
        wire = core_tool_choice(choice)
        if isinstance(wire, str) or isinstance(wire.get("function"), Mapping):
            return wire
    raise ValueError(
        f"Unrecognized tool_choice {choice!r}: expected 'auto', 'none', 'any', 'required', "
        "True, a tool name, or {'type': 'function', 'function': {'name': ...}}."
    )


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
    # OpenAI's "developer" role is the system prompt; the service knows only "system".
    role = "system" if message.role == "developer" else message.role
    return {"role": role, "content": text_of(message.content, role=role)}


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
        calls = [legacy_tool_call(raw) for raw in message.additional_kwargs["tool_calls"]]
    return calls


def _tool_call_to_wire(call: ToolCall) -> dict[str, Any]:
    return wire_tool_call(call.get("id"), call["name"], call["args"])


def _invalid_tool_call_to_wire(call: InvalidToolCall) -> dict[str, Any]:
    return wire_tool_call(call.get("id"), call.get("name"), call.get("args"))


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
    counts = usage_counts(usage)
    if counts is None:
        return None
    # A cast dict: langchain-core 1.8 takes ``NotRequired`` from ``typing``, which a type
    # checker for Python 3.10 does not know, so it would require the optional detail keys.
    metadata = cast(
        UsageMetadata,
        {
            "input_tokens": counts["prompt_tokens"],
            "output_tokens": counts["completion_tokens"],
            "total_tokens": counts["total_tokens"],
        },
    )
    if "cached_tokens" in counts:
        metadata["input_token_details"] = InputTokenDetails(cache_read=counts["cached_tokens"])
    if "reasoning_tokens" in counts:
        metadata["output_token_details"] = OutputTokenDetails(reasoning=counts["reasoning_tokens"])
    return metadata


def parse_tool_calls(
    raw_calls: Iterable[Mapping[str, Any]] | None,
) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    """Split wire ``tool_calls`` into valid calls (JSON-object arguments) and invalid ones.

    A call the service sent without an id gets one, so that its result can name it.
    """
    valid: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for raw in raw_calls or ():
        function = raw.get("function") or {}
        name = function.get("name") or ""
        arguments = function.get("arguments") or ""
        call_id = raw.get("id") or new_tool_call_id()
        try:
            args = parse_tool_arguments(arguments)
        except ValueError as error:
            message = f"Arguments are not a JSON object: {error}"
            invalid.append(invalid_tool_call(name=name, args=arguments, id=call_id, error=message))
        else:
            valid.append(tool_call(name=name, args=args, id=call_id))
    return valid, invalid


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


class StreamConverter:
    """Turns the core's chunk dicts into ``ChatGenerationChunk`` objects for one stream.

    Only choice 0 is streamed (LangChain merges a stream into one message). Usage and the
    response metadata go on one closing chunk, built from the core's aggregate, so they
    appear exactly once however the service spreads them over chunks.

    Tool-call fragments arrive normalised by the core (``_accumulate``: ``index`` is the call's,
    ``id`` is None when absent, ``function`` has ``name`` and ``arguments``), so LangChain's
    merge by ``index`` assembles them; only a repeated name is dropped (the merge would
    concatenate it), and a call that never got an id gets one on the closing chunk.
    """

    __slots__ = ("_has_id", "_named")

    def __init__(self) -> None:
        self._named: set[int] = set()
        self._has_id: dict[int, bool] = {}

    def convert(self, chunk: Mapping[str, Any]) -> ChatGenerationChunk | None:
        """The generation chunk for one wire chunk, or ``None`` when it carries nothing."""
        choice = first_choice(chunk)
        if choice is None:
            return None
        delta = choice.get("delta") or {}
        content = delta.get("content") or ""
        additional: dict[str, Any] = {}
        if delta.get("reasoning_content"):
            additional["reasoning_content"] = delta["reasoning_content"]
        calls = [self._tool_call_chunk(raw) for raw in delta.get("tool_calls") or ()]
        if not (content or additional or calls):
            return None
        message = AIMessageChunk(
            content=content,
            additional_kwargs=additional,
            tool_call_chunks=calls,
            response_metadata={"model_provider": PROVIDER},
        )
        return ChatGenerationChunk(message=message)

    def _tool_call_chunk(self, raw: Mapping[str, Any]) -> ToolCallChunk:
        index, call_id, function = raw["index"], raw["id"], raw["function"]
        name = function["name"]
        if name is not None and index in self._named:
            name = None
        elif name is not None:
            self._named.add(index)
        self._has_id[index] = self._has_id.get(index, False) or call_id is not None
        return tool_call_chunk(name=name, args=function["arguments"], id=call_id, index=index)

    def _missing_ids(self) -> list[ToolCallChunk]:
        return [
            tool_call_chunk(name=None, args="", id=new_tool_call_id(), index=index)
            for index, has_id in self._has_id.items()
            if not has_id
        ]

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
        choice = first_choice(completion) or {}
        info: dict[str, Any] = {"finish_reason": choice.get("finish_reason")}
        if choice.get("logprobs") is not None:
            info["logprobs"] = choice["logprobs"]
        message = AIMessageChunk(
            content="",
            tool_call_chunks=self._missing_ids(),
            usage_metadata=usage_to_metadata(completion.get("usage")),
            response_metadata={**metadata, **info},
            chunk_position="last",
        )
        return ChatGenerationChunk(message=message, generation_info=info)


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
