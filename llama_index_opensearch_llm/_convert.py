"""Conversions between LlamaIndex objects and the core's OpenAI wire dicts. Pure; no I/O.

Request side: ``ChatMessage`` and its blocks become wire messages (reasoning is never sent back,
design "Facts"); tools become OpenAI tool dicts. Response side: a ``chat.completion`` becomes a
``ChatResponse`` whose message holds a ``ThinkingBlock``, a ``TextBlock`` and ``ToolCallBlock``s,
and ``ChatStreamState`` turns each ``chat.completion.chunk`` into a cumulative ``ChatResponse``
(tool-call fragments merged by ``index``; the core has already normalised them, CONTRACT.md).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import (
    AudioBlock,
    CachePoint,
    ChatMessage,
    ChatResponse,
    CitableBlock,
    CitationBlock,
    CompletionResponse,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    VideoBlock,
)
from llama_index.core.llms.llm import ToolSelection

from llama_index_opensearch_llm._json import parse_arguments
from opensearch_llm import RequestValidationError
from opensearch_llm._validate import CHAT_PARAMS, TOOL_CHOICE_STRINGS

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

WireMessage = dict[str, Any]
Part = dict[str, Any]

# ----------------------------------------------------------------------------------------------
# Request side: messages
# ----------------------------------------------------------------------------------------------

#: LlamaIndex roles -> wire roles (api-docs 000: system, user, assistant; tool for results).
WIRE_ROLES: dict[str, str] = {
    MessageRole.SYSTEM.value: "system",
    MessageRole.DEVELOPER.value: "system",
    MessageRole.USER.value: "user",
    MessageRole.ASSISTANT.value: "assistant",
    MessageRole.CHATBOT.value: "assistant",
    MessageRole.MODEL.value: "assistant",
    MessageRole.TOOL.value: "tool",
    MessageRole.FUNCTION.value: "tool",
}

#: Blocks that are never sent: reasoning (design: never send it back), cache hints, and tool
#: calls (sent as ``tool_calls``, not as content).
_SKIPPED_BLOCKS = (ThinkingBlock, CachePoint, ToolCallBlock)


def to_wire_messages(messages: Sequence[ChatMessage]) -> list[WireMessage]:
    """The wire messages for a LlamaIndex chat history (the history is not modified).

    Leading system messages are merged into one, because the service takes a system message
    only as ``messages[0]`` (api-docs 000).
    """
    return _merge_leading_system([to_wire_message(message) for message in messages])


def to_wire_message(message: ChatMessage) -> WireMessage:
    """The wire dict of one LlamaIndex message."""
    role = WIRE_ROLES.get(_role_value(message.role))
    if role is None:
        raise RequestValidationError("message.role", message.role, ", ".join(sorted(WIRE_ROLES)))
    return _MESSAGE_BUILDERS[role](message)


def _role_value(role: MessageRole | str) -> str:
    return role.value if isinstance(role, MessageRole) else str(role)


def _system_message(message: ChatMessage) -> WireMessage:
    return {"role": "system", "content": blocks_text(message.blocks, "system")}


def _user_message(message: ChatMessage) -> WireMessage:
    wire: WireMessage = {"role": "user", "content": user_content(message.blocks)}
    return _with_name(wire, message)


def _assistant_message(message: ChatMessage) -> WireMessage:
    text = blocks_text(message.blocks, "assistant")
    tool_calls = wire_tool_calls(message)
    wire: WireMessage = {"role": "assistant", "content": text if text or not tool_calls else None}
    if tool_calls:
        wire["tool_calls"] = tool_calls
    return _with_name(wire, message)


def _tool_message(message: ChatMessage) -> WireMessage:
    wire: WireMessage = {
        "role": "tool",
        "content": blocks_text(message.blocks, "tool"),
        "tool_call_id": message.additional_kwargs.get("tool_call_id"),
    }
    return _with_name(wire, message)


_MESSAGE_BUILDERS: dict[str, Callable[[ChatMessage], WireMessage]] = {
    "system": _system_message,
    "user": _user_message,
    "assistant": _assistant_message,
    "tool": _tool_message,
}


def _with_name(wire: WireMessage, message: ChatMessage) -> WireMessage:
    name = message.additional_kwargs.get("name")
    if isinstance(name, str) and name:
        wire["name"] = name
    return wire


def _merge_leading_system(wire: list[WireMessage]) -> list[WireMessage]:
    count = 0
    while count < len(wire) and wire[count]["role"] == "system":
        count += 1
    if count < 2:
        return wire
    text = "\n\n".join(m["content"] for m in wire[:count] if m["content"])
    return [{"role": "system", "content": text}, *wire[count:]]


def blocks_text(blocks: Iterable[Any], role: str) -> str:
    """The text of blocks for a text-only role; media blocks raise, reasoning is left out."""
    texts: list[str] = []
    for block in blocks:
        for part in content_parts(block):
            if part["type"] != "text":
                raise RequestValidationError(
                    f"{role} message content", type(block).__name__, "text blocks only"
                )
            texts.append(part["text"])
    return "\n".join(texts)


def user_content(blocks: Iterable[Any]) -> str | list[Part]:
    """A string when every block is text, else a list of content parts (text, image, ...)."""
    parts = [part for block in blocks for part in content_parts(block)]
    if all(part["type"] == "text" for part in parts):
        return "\n".join(part["text"] for part in parts)
    return parts


def content_parts(block: Any) -> list[Part]:
    """The wire content parts of one block (none for reasoning, cache hints and tool calls)."""
    if isinstance(block, _SKIPPED_BLOCKS):
        return []
    for kind, builder in _PART_BUILDERS:
        if isinstance(block, kind):
            return builder(block)
    raise RequestValidationError(
        "message block",
        type(block).__name__,
        "TextBlock, ImageBlock, AudioBlock, VideoBlock, CitableBlock or CitationBlock",
        "Extract a document's text into a TextBlock first.",
    )


def _text_parts(block: TextBlock) -> list[Part]:
    return [{"type": "text", "text": block.text}]


def _image_parts(block: ImageBlock) -> list[Part]:
    image_url: dict[str, Any] = {"url": _media_url(block, block.image, block.image_mimetype)}
    if block.detail:
        image_url["detail"] = block.detail
    return [{"type": "image_url", "image_url": image_url}]


def _audio_parts(block: AudioBlock) -> list[Part]:
    audio: dict[str, Any] = {"data": _media_url(block, block.audio, None)}
    if block.format:
        audio["format"] = block.format
    return [{"type": "input_audio", "input_audio": audio}]


def _video_parts(block: VideoBlock) -> list[Part]:
    return [{"type": "video_url", "video_url": {"url": _media_url(block, block.video, None)}}]


def _citable_parts(block: CitableBlock) -> list[Part]:
    return [part for inner in block.content for part in content_parts(inner)]


def _citation_parts(block: CitationBlock) -> list[Part]:
    return content_parts(block.cited_content)


def _media_url(block: Any, data: Any, mimetype: str | None) -> str:
    """A block's URL as given, else its bytes (or file) as a base64 ``data:`` URL."""
    if block.url is not None and not data and block.path is None:
        return str(block.url)
    if isinstance(data, bytes) and mimetype:
        # The block already holds base64 text (LlamaIndex encodes at validation).
        return f"data:{mimetype};base64,{data.decode('ascii')}"
    return str(block.inline_url())


_PART_BUILDERS: tuple[tuple[type, Callable[[Any], list[Part]]], ...] = (
    (TextBlock, _text_parts),
    (ImageBlock, _image_parts),
    (AudioBlock, _audio_parts),
    (VideoBlock, _video_parts),
    (CitableBlock, _citable_parts),
    (CitationBlock, _citation_parts),
)

# ----------------------------------------------------------------------------------------------
# Request side: tool calls in history, tools, parameters
# ----------------------------------------------------------------------------------------------


def wire_tool_calls(message: ChatMessage) -> list[dict[str, Any]]:
    """The ``tool_calls`` of an assistant message: its ToolCallBlocks, else the legacy kwarg."""
    blocks = [block for block in message.blocks if isinstance(block, ToolCallBlock)]
    if blocks:
        return [_block_tool_call(block) for block in blocks]
    return [_legacy_tool_call(call) for call in message.additional_kwargs.get("tool_calls") or ()]


def _block_tool_call(block: ToolCallBlock) -> dict[str, Any]:
    return _wire_call(block.tool_call_id, block.tool_name, block.tool_kwargs)


def _legacy_tool_call(call: Any) -> dict[str, Any]:
    """A tool call kept in ``additional_kwargs`` (a wire dict, or an SDK object)."""
    data = call.model_dump() if hasattr(call, "model_dump") else dict(call)
    function = data.get("function") or {}
    return _wire_call(data.get("id"), function.get("name") or "", function.get("arguments"))


def _wire_call(call_id: str | None, name: str, arguments: Any) -> dict[str, Any]:
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments or {}, ensure_ascii=False)
    return {
        "id": call_id or "",
        "type": "function",
        "function": {"name": name, "arguments": arguments or "{}"},
    }


def tool_spec(tool: BaseTool) -> dict[str, Any]:
    """The OpenAI tool dict of a LlamaIndex tool (descriptions are not cut at 1024 chars)."""
    return tool.metadata.to_openai_tool(skip_length_check=True)


def resolve_tool_choice(tool_choice: str | dict[str, Any] | None, tool_required: bool) -> Any:
    """The wire ``tool_choice``: as given, a tool name made a function choice, or ``required``.

    None (nothing sent; the service's default is ``auto``) when neither is given.
    """
    if tool_choice is None:
        return "required" if tool_required else None
    if isinstance(tool_choice, str) and tool_choice not in TOOL_CHOICE_STRINGS:
        return {"type": "function", "function": {"name": tool_choice}}
    return tool_choice


def request_params(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge parameter layers (later wins); drop None; move non-core keys into ``extra_body``.

    The core takes a fixed set of keywords (CONTRACT.md) and rejects others; anything else the
    caller set (e.g. a Qwen body field the core does not know yet) is sent through
    ``extra_body``.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    params: dict[str, Any] = {}
    extra: dict[str, Any] = dict(merged.pop("extra_body", None) or {})
    for name, value in merged.items():
        if value is None:
            continue
        if name in CHAT_PARAMS:
            params[name] = value
        else:
            extra[name] = value
    if extra:
        params["extra_body"] = extra
    return params


# ----------------------------------------------------------------------------------------------
# Response side
# ----------------------------------------------------------------------------------------------


def usage_fields(usage: Mapping[str, Any] | None) -> dict[str, int]:
    """Token counts of a wire ``usage``: prompt, completion, total, reasoning and cached."""
    if not usage:
        return {}
    fields = {
        name: usage[name]
        for name in ("prompt_tokens", "completion_tokens", "total_tokens")
        if isinstance(usage.get(name), int)
    }
    reasoning = _detail(usage, "completion_tokens_details", "reasoning_tokens")
    if reasoning is not None:
        fields["reasoning_tokens"] = reasoning
    cached = _detail(usage, "prompt_tokens_details", "cached_tokens")
    if cached is not None:
        fields["cached_tokens"] = cached
    return fields


def reasoning_tokens(usage: Mapping[str, Any] | None) -> int | None:
    """``usage.completion_tokens_details.reasoning_tokens``, when the service sent it."""
    return _detail(usage, "completion_tokens_details", "reasoning_tokens") if usage else None


def _detail(usage: Mapping[str, Any], group: str, name: str) -> int | None:
    details = usage.get(group)
    value = details.get(name) if isinstance(details, Mapping) else None
    return value if isinstance(value, int) else None


def response_fields(
    *,
    model: str | None,
    request_id: str | None,
    finish_reason: str | None,
    usage: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The ``additional_kwargs`` of a response: usage, finish reason, request id and model."""
    fields: dict[str, Any] = usage_fields(usage)
    fields["finish_reason"] = finish_reason
    fields["request_id"] = request_id
    fields["model"] = model
    return fields


def content_text(content: Any) -> str:
    """A wire ``content`` (string, None, or a list of text parts) as text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, Mapping))
    return ""


def assistant_message(
    content: str,
    reasoning: str,
    tool_calls: list[dict[str, Any]],
    reasoning_tokens: int | None = None,
) -> ChatMessage:
    """The assistant ChatMessage: ThinkingBlock, TextBlock and ToolCallBlocks, in that order.

    The text block is left out only when there are tool calls and no text, so that
    ``message.content`` is None for a pure tool call and ``""`` for an empty answer.
    """
    blocks: list[Any] = []
    if reasoning:
        blocks.append(ThinkingBlock(content=reasoning, num_tokens=reasoning_tokens))
    if content or not tool_calls:
        blocks.append(TextBlock(text=content))
    blocks.extend(
        ToolCallBlock(
            tool_call_id=call["id"],
            tool_name=call["function"]["name"],
            tool_kwargs=call["function"]["arguments"],
        )
        for call in tool_calls
    )
    extra = {"tool_calls": tool_calls} if tool_calls else {}
    return ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks, additional_kwargs=extra)


def chat_response(completion: Mapping[str, Any]) -> ChatResponse:
    """The ChatResponse of a ``chat.completion`` dict (first choice); ``raw`` is the dict."""
    choice = _first_choice(completion.get("choices"))
    wire = choice.get("message") or {}
    usage = completion.get("usage")
    message = assistant_message(
        content_text(wire.get("content")),
        wire.get("reasoning_content") or "",
        [_response_tool_call(call) for call in wire.get("tool_calls") or ()],
        reasoning_tokens(usage),
    )
    fields = response_fields(
        model=completion.get("model"),
        request_id=completion.get("request_id"),
        finish_reason=choice.get("finish_reason"),
        usage=usage,
    )
    return ChatResponse(message=message, raw=completion, additional_kwargs=fields)


def _first_choice(choices: Any) -> Mapping[str, Any]:
    if not choices:
        return {}
    for choice in choices:
        if (choice.get("index") or 0) == 0:
            return choice  # type: ignore[no-any-return]
    return choices[0]  # type: ignore[no-any-return]


def _response_tool_call(call: Mapping[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments or {}, ensure_ascii=False)
    return {
        "id": call.get("id") or new_tool_call_id(),
        "type": "function",
        "function": {"name": function.get("name") or "", "arguments": arguments},
    }


def new_tool_call_id() -> str:
    """An id for a tool call the service sent without one (tool results must name an id)."""
    return f"call_{uuid.uuid4().hex[:24]}"


def completion_response(response: ChatResponse) -> CompletionResponse:
    """The CompletionResponse of a ChatResponse: its text, delta, raw and additional kwargs."""
    fields = dict(response.additional_kwargs)
    reasoning = thinking_text(response.message)
    if reasoning:
        fields["reasoning_content"] = reasoning
    return CompletionResponse(
        text=response.message.content or "",
        delta=response.delta,
        raw=response.raw,
        additional_kwargs=fields,
    )


def thinking_text(message: ChatMessage) -> str:
    """The reasoning text of a message's ThinkingBlocks."""
    return "".join(
        block.content or "" for block in message.blocks if isinstance(block, ThinkingBlock)
    )


# ----------------------------------------------------------------------------------------------
# Streaming
# ----------------------------------------------------------------------------------------------


class ChatStreamState:
    """Turns each streamed chunk into a cumulative ChatResponse.

    ``delta`` is the chunk's new content, ``additional_kwargs["thinking_delta"]`` its new
    reasoning; the message holds everything so far. Tool-call fragments are merged by
    ``index``: parallel calls in one chunk each get their own entry, and argument fragments are
    concatenated exactly as received (no whitespace touched).
    """

    __slots__ = ("_calls", "_content", "_finish_reason", "_model", "_reasoning", "_usage")

    def __init__(self) -> None:
        self._content = ""
        self._reasoning = ""
        self._calls: dict[int, _PendingCall] = {}
        self._finish_reason: str | None = None
        self._model: str | None = None
        self._usage: Mapping[str, Any] | None = None

    def add(self, chunk: Mapping[str, Any], request_id: str | None = None) -> ChatResponse:
        """Merge ``chunk`` and return the ChatResponse for it (``raw`` is the chunk)."""
        self._model = self._model or chunk.get("model")
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        content_delta, thinking_delta = self._merge_choice(chunk.get("choices"))
        fields = response_fields(
            model=self._model,
            request_id=request_id,
            finish_reason=self._finish_reason,
            usage=self._usage,
        )
        if thinking_delta:
            fields["thinking_delta"] = thinking_delta
        return ChatResponse(
            message=self.message(), delta=content_delta, raw=chunk, additional_kwargs=fields
        )

    def message(self) -> ChatMessage:
        """The assistant message of everything received so far."""
        calls = [self._calls[index].wire() for index in sorted(self._calls)]
        return assistant_message(
            self._content, self._reasoning, calls, reasoning_tokens(self._usage)
        )

    def _merge_choice(self, choices: Any) -> tuple[str, str]:
        choice = _first_choice(choices)
        if not choice:
            return "", ""
        if choice.get("finish_reason"):
            self._finish_reason = choice["finish_reason"]
        delta = choice.get("delta") or {}
        content = delta.get("content") or ""
        reasoning = delta.get("reasoning_content") or ""
        self._content += content
        self._reasoning += reasoning
        for position, fragment in enumerate(delta.get("tool_calls") or ()):
            self._merge_call(position, fragment)
        return content, reasoning

    def _merge_call(self, position: int, fragment: Mapping[str, Any]) -> None:
        index = fragment.get("index")
        if not isinstance(index, int):
            index = position
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = _PendingCall()
        call.add(fragment)


class _PendingCall:
    """One streamed tool call being assembled from its fragments."""

    __slots__ = ("arguments", "call_id", "name", "synthetic_id")

    def __init__(self) -> None:
        self.call_id = new_tool_call_id()
        self.synthetic_id = True
        self.name = ""
        self.arguments = ""

    def add(self, fragment: Mapping[str, Any]) -> None:
        # Later fragments carry "id": "" (normalised to None by the core): keep the first id.
        call_id = fragment.get("id")
        if call_id and self.synthetic_id:
            self.call_id, self.synthetic_id = call_id, False
        function = fragment.get("function") or {}
        if function.get("name") and not self.name:
            self.name = function["name"]
        self.arguments += function.get("arguments") or ""

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.call_id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


# ----------------------------------------------------------------------------------------------
# Tool selections
# ----------------------------------------------------------------------------------------------


def tool_selections(message: ChatMessage) -> list[ToolSelection]:
    """The tool calls of a message as ToolSelections, arguments parsed even when partial."""
    blocks = [block for block in message.blocks if isinstance(block, ToolCallBlock)]
    if blocks:
        return [
            ToolSelection(
                tool_id=block.tool_call_id or "",
                tool_name=block.tool_name,
                tool_kwargs=parse_arguments(block.tool_kwargs),
            )
            for block in blocks
        ]
    return [_legacy_selection(call) for call in message.additional_kwargs.get("tool_calls") or ()]


def _legacy_selection(call: Any) -> ToolSelection:
    wire = _legacy_tool_call(call)
    return ToolSelection(
        tool_id=wire["id"],
        tool_name=wire["function"]["name"],
        tool_kwargs=parse_arguments(wire["function"]["arguments"]),
    )


def keep_first_tool_call(message: ChatMessage) -> None:
    """Drop every tool call after the first (for ``allow_parallel_tool_calls=False``)."""
    calls = [block for block in message.blocks if isinstance(block, ToolCallBlock)]
    if len(calls) < 2:
        return
    message.blocks = [block for block in message.blocks if not isinstance(block, ToolCallBlock)] + [
        calls[0]
    ]
    legacy = message.additional_kwargs.get("tool_calls")
    if isinstance(legacy, list) and legacy:
        message.additional_kwargs["tool_calls"] = legacy[:1]
