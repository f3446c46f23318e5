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

from langchain_opensearch_llm._blocks import block_part
from opensearch_llm import ModelProfile as CoreModelProfile
from opensearch_llm._adapters import (
    first_choice,
    legacy_tool_call,
    new_tool_call_id,
    parse_tool_arguments,
    sent_value,
    service_messages,
    usage_counts,
    wire_tool_call,
)
from opensearch_llm._adapters import role_content as core_role_content
from opensearch_llm._adapters import wire_tool_choice as core_tool_choice

#: ``response_metadata["model_provider"]`` and ``ls_provider`` of every message we build.
PROVIDER = "opensearch_llm"

WireMessage = dict[str, Any]
Part = dict[str, Any]
#: The MIME type of a spoken answer when the call did not say its format.
DEFAULT_AUDIO_MIME = "audio/wav"

# Blocks that are model output or provider bookkeeping: never sent back to the service
# (docs/service-facts.md, "Requests": reasoning is never sent back; tool calls travel in
# ``tool_calls``).
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


# --------------------------------------------------------------------------- inbound


def messages_to_wire(messages: Sequence[BaseMessage]) -> list[WireMessage]:
    """The wire dicts of ``messages``, as the service takes them (``service_messages``)."""
    return service_messages([message_to_wire(message) for message in messages])


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
    return {"role": "system", "content": role_content(message.content, role="system")}


def _human_to_wire(message: BaseMessage) -> WireMessage:
    return {"role": "user", "content": user_content(message.content)}


def _tool_to_wire(message: BaseMessage) -> WireMessage:
    assert isinstance(message, ToolMessage)
    return {
        "role": "tool",
        "tool_call_id": message.tool_call_id,
        "content": role_content(message.content, role="tool"),
    }


def _chat_to_wire(message: BaseMessage) -> WireMessage:
    assert isinstance(message, ChatMessage)
    if message.role == "assistant":
        return _ai_to_wire(AIMessage(content=message.content, name=message.name))
    if message.role == "user":
        return {"role": "user", "content": user_content(message.content)}
    # OpenAI's "developer" role is the system prompt; the service knows only "system".
    role = "system" if message.role == "developer" else message.role
    return {"role": role, "content": role_content(message.content, role=role)}


def _ai_to_wire(message: BaseMessage) -> WireMessage:
    assert isinstance(message, AIMessage)
    content = role_content(message.content, role="assistant")
    wire: WireMessage = {"role": "assistant", "content": content}
    calls = ai_tool_calls_to_wire(message)
    if calls:
        wire["tool_calls"] = calls
    if message.additional_kwargs.get("partial") is True:
        wire["partial"] = True  # prefix completion: the answer continues this text
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


def role_content(content: str | list[str | dict[str, Any]], *, role: str) -> Any:
    """The content of a system, assistant or tool message (the core's ``role_content`` rules).

    Output-only blocks (reasoning, tool calls) are left out, and so is what an answer carried
    besides text (a spoken answer's audio), unread.
    """
    if isinstance(content, str):
        return content
    if role == "assistant":
        content = [b for b in content if isinstance(b, str) or b.get("type") == "text"]
    parts = [part for block in content if (part := content_part(block)) is not None]
    return core_role_content(parts, role)


def user_content(content: str | list[str | dict[str, Any]]) -> str | list[Part]:
    """The content of a user message: a string, or a list of content parts."""
    if isinstance(content, str):
        return content
    parts = [part for block in content if (part := content_part(block)) is not None]
    if len(parts) == 1 and parts[0]["type"] == "text" and "cache_control" not in parts[0]:
        return str(parts[0]["text"])
    return parts


def content_part(block: str | Mapping[str, Any]) -> Part | None:
    """One content block as a wire part; ``None`` for output-only blocks (see ``_blocks``)."""
    if isinstance(block, str):
        return {"type": "text", "text": block}
    if block.get("type") in _OUTPUT_ONLY_BLOCKS:
        return None
    return block_part(block)


# --------------------------------------------------------------------------- outbound


#: langchain-core's input token details and the core's names of the same counts.
_CACHE_DETAILS = (("cache_read", "cached_tokens"), ("cache_creation", "cache_creation_tokens"))


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
    details = {name: counts[key] for name, key in _CACHE_DETAILS if key in counts}
    if details:
        metadata["input_token_details"] = cast(InputTokenDetails, details)
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
    *,
    audio_mime: str = DEFAULT_AUDIO_MIME,
) -> AIMessage:
    """An ``AIMessage`` from a wire ``choices[i].message``: text, reasoning, tool calls.

    A spoken answer (``message.audio``) makes the content a text block and an audio block.
    """
    tool_calls, invalid = parse_tool_calls(message.get("tool_calls"))
    additional: dict[str, Any] = {}
    if message.get("reasoning_content"):
        additional["reasoning_content"] = message["reasoning_content"]
    text = message.get("content") or ""
    audio = message.get("audio")
    content: str | list[str | dict[str, Any]] = text
    if isinstance(audio, Mapping) and audio.get("data"):
        content = [{"type": "text", "text": text}, audio_block(audio, audio_mime)]
    return AIMessage(
        content=content,
        additional_kwargs=additional,
        tool_calls=tool_calls,
        invalid_tool_calls=invalid,
        usage_metadata=usage,
        response_metadata=dict(response_metadata),
    )


def audio_block(audio: Mapping[str, Any], mime_type: str) -> dict[str, Any]:
    """The standard audio block of a spoken answer (base64 data; transcript in ``extras``)."""
    block: dict[str, Any] = {"type": "audio", "base64": audio["data"], "mime_type": mime_type}
    if audio.get("id"):
        block["id"] = audio["id"]
    if audio.get("transcript"):
        block["extras"] = {"transcript": audio["transcript"]}
    return block


def audio_mime(params: Mapping[str, Any]) -> str | None:
    """The MIME type of the spoken answer a call asks for (``modalities``, ``audio``), or None."""
    if "audio" not in (sent_value(params, "modalities") or ()):
        return None
    audio = sent_value(params, "audio") or {}
    return f"audio/{audio.get('format') or 'wav'}"


def completion_to_result(
    completion: Mapping[str, Any],
    *,
    model: str | None = None,
    audio_mime: str | None = None,
) -> ChatResult:
    """A ``ChatResult`` with one generation per choice.

    Usage is for the whole response, so it goes on the first generation only (summing
    the generations' usage then gives the response's usage).
    """
    shared = completion_metadata(completion, model=model)
    usage = usage_to_metadata(completion.get("usage"))
    mime = audio_mime or DEFAULT_AUDIO_MIME
    generations = [
        _generation(choice, shared, usage if position == 0 else None, mime)
        for position, choice in enumerate(completion.get("choices") or ())
    ]
    llm_output = {**shared, "token_usage": completion.get("usage")}
    return ChatResult(generations=generations, llm_output=llm_output)


def _generation(
    choice: Mapping[str, Any],
    shared: Mapping[str, Any],
    usage: UsageMetadata | None,
    audio_mime: str,
) -> ChatGeneration:
    info: dict[str, Any] = {"finish_reason": choice.get("finish_reason")}
    if choice.get("logprobs") is not None:
        info["logprobs"] = choice["logprobs"]
    message = ai_message_from_wire(
        choice.get("message") or {}, {**shared, **info}, usage, audio_mime=audio_mime
    )
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

    When the call asks for a spoken answer (``audio_mime``), content comes as blocks: text at
    index 0 and the base64 audio at index 1, which chunk addition joins into one text block
    and one audio block (the MIME type and id ride on the first audio piece only, so that the
    join does not repeat them).
    """

    __slots__ = ("_audio_mime", "_audio_started", "_has_id", "_named")

    def __init__(self, audio_mime: str | None = None) -> None:
        self._named: set[int] = set()
        self._has_id: dict[int, bool] = {}
        self._audio_mime = audio_mime
        self._audio_started = False

    def convert(self, chunk: Mapping[str, Any]) -> ChatGenerationChunk | None:
        """The generation chunk for one wire chunk, or ``None`` when it carries nothing."""
        choice = first_choice(chunk)
        if choice is None:
            return None
        delta = choice.get("delta") or {}
        content: str | list[str | dict[str, Any]] = delta.get("content") or ""
        if self._audio_mime is not None:
            content = self._blocks(str(content), delta.get("audio"))
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

    def _blocks(self, text: str, audio: Any) -> list[str | dict[str, Any]]:
        blocks: list[str | dict[str, Any]] = []
        if text:
            blocks.append({"type": "text", "text": text, "index": 0})
        if isinstance(audio, Mapping) and (audio.get("data") or audio.get("transcript")):
            block: dict[str, Any] = {"type": "audio", "base64": audio.get("data") or "", "index": 1}
            if not self._audio_started:
                block["mime_type"] = self._audio_mime
                if audio.get("id"):
                    block["id"] = audio["id"]
                self._audio_started = True
            if audio.get("transcript"):
                block["extras"] = {"transcript": audio["transcript"]}
            blocks.append(block)
        return blocks

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
        audio_inputs=profile.audio_input,
        video_inputs=profile.video,
        # A tool result's images reach the model in a user message after it (the core's).
        image_tool_message=profile.vision,
        pdf_tool_message=False,
        audio_outputs=profile.audio_output,
        reasoning_output=profile.thinking != "none",
        tool_calling=profile.tools,
        tool_choice=profile.tools,
        tool_call_streaming=profile.tools,
        structured_output=profile.json_schema,
    )
