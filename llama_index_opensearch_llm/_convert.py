"""Conversions between LlamaIndex objects and the core's OpenAI wire dicts. Pure; no I/O.

Request side: ``ChatMessage`` and its blocks become wire messages (reasoning is never sent back,
design "Facts"); tools become OpenAI tool dicts. Response side: a ``chat.completion`` becomes a
``ChatResponse`` whose message holds a ``ThinkingBlock``, a ``TextBlock`` and ``ToolCallBlock``s,
and ``ChatStreamState`` turns each ``chat.completion.chunk`` into a cumulative ``ChatResponse``
built from the core's aggregate of the stream so far (the core merges the fragments, once).
What is not LlamaIndex-specific is the core's, in ``opensearch_llm._adapters``.
"""

from __future__ import annotations

import json
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
    DocumentBlock,
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
from opensearch_llm._adapters import (
    UPLOAD_ADVICE,
    audio_data_url,
    audio_part,
    data_url,
    file_id_from_url,
    file_part,
    first_choice,
    image_part,
    legacy_tool_call,
    mark_last_part,
    new_tool_call_id,
    parse_tool_arguments,
    service_messages,
    text_content,
    text_part,
    usage_counts,
    video_part,
    wire_tool_call,
)
from opensearch_llm._adapters import role_content as core_role_content

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

WireMessage = dict[str, Any]
Part = dict[str, Any]
#: The format of a spoken answer when the call did not say it.
DEFAULT_AUDIO_FORMAT = "wav"

# ----------------------------------------------------------------------------------------------
# Request side: messages
# ----------------------------------------------------------------------------------------------

#: LlamaIndex roles -> wire roles (docs/service-facts.md, "Requests").
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

#: Blocks that are never sent: reasoning (docs/service-facts.md, "Requests") and tool calls (sent
#: as ``tool_calls``, not as content). A ``CachePoint`` marks the part before it.
_SKIPPED_BLOCKS = (ThinkingBlock, ToolCallBlock)
_UPLOAD_HINT = (
    f"Extract a document's text into a TextBlock, or {UPLOAD_ADVICE}: "
    "DocumentBlock(url='fileid://<file id>')."
)


def to_wire_messages(messages: Sequence[ChatMessage]) -> list[WireMessage]:
    """The wire messages for a LlamaIndex chat history (the history is not modified).

    System (and developer) messages are merged into one, first, because the service takes a
    system message only as ``messages[0]`` (docs/service-facts.md, "Requests"); file references
    and a tool result's media are placed as the service takes them (``service_messages``).
    """
    return service_messages([to_wire_message(message) for message in messages])


def to_wire_message(message: ChatMessage) -> WireMessage:
    """The wire dict of one LlamaIndex message."""
    role = WIRE_ROLES.get(_role_value(message.role))
    if role is None:
        raise RequestValidationError("message.role", message.role, ", ".join(sorted(WIRE_ROLES)))
    return _MESSAGE_BUILDERS[role](message)


def _role_value(role: MessageRole | str) -> str:
    return role.value if isinstance(role, MessageRole) else str(role)


def _system_message(message: ChatMessage) -> WireMessage:
    return {"role": "system", "content": role_content(message.blocks, "system")}


def _user_message(message: ChatMessage) -> WireMessage:
    wire: WireMessage = {"role": "user", "content": user_content(message.blocks)}
    return _with_name(wire, message)


def _assistant_message(message: ChatMessage) -> WireMessage:
    tool_calls = wire_tool_calls(message)
    # "" rather than null, as the documented tool-call example sends history back.
    wire: WireMessage = {"role": "assistant", "content": role_content(message.blocks, "assistant")}
    if tool_calls:
        wire["tool_calls"] = tool_calls
    if message.additional_kwargs.get("partial") is True:
        wire["partial"] = True  # prefix completion: the answer continues this text
    return _with_name(wire, message)


def _tool_message(message: ChatMessage) -> WireMessage:
    wire: WireMessage = {
        "role": "tool",
        "content": role_content(message.blocks, "tool"),
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


def role_content(blocks: Iterable[Any], role: str) -> Any:
    """The content of a system, assistant or tool message (the core's ``role_content`` rules)."""
    return core_role_content(blocks_parts(blocks), role, "\n")


def user_content(blocks: Iterable[Any]) -> str | list[Part]:
    """A string when every block is text (and none is cached), else a list of content parts."""
    parts = blocks_parts(blocks)
    if all(part["type"] == "text" for part in parts):
        return text_content(parts, "\n")
    return parts


def blocks_parts(blocks: Iterable[Any]) -> list[Part]:
    """The wire content parts of blocks; a ``CachePoint`` puts a cache marker on the part before."""
    parts: list[Part] = []
    for block in blocks:
        if isinstance(block, CachePoint):
            mark_last_part(parts)
        else:
            parts += content_parts(block)
    return parts


def content_parts(block: Any) -> list[Part]:
    """The wire content parts of one block (none for reasoning and tool calls)."""
    if isinstance(block, _SKIPPED_BLOCKS):
        return []
    for kind, builder in _PART_BUILDERS:
        if isinstance(block, kind):
            return builder(block)
    raise RequestValidationError(
        "message block",
        type(block).__name__,
        "TextBlock, ImageBlock, AudioBlock, VideoBlock, DocumentBlock, CitableBlock, "
        "CitationBlock or CachePoint",
    )


def _text_parts(block: TextBlock) -> list[Part]:
    return [text_part(block.text)]


def _image_parts(block: ImageBlock) -> list[Part]:
    return [image_part(_media_url(block, block.image, block.image_mimetype), block.detail)]


def _audio_parts(block: AudioBlock) -> list[Part]:
    if block.url is not None and not block.audio and block.path is None:
        return [audio_part(str(block.url), block.format)]
    data = block.resolve_audio(as_base64=True).read().decode("ascii")
    return [audio_part(audio_data_url(data), block.format)]


def _video_parts(block: VideoBlock) -> list[Part]:
    return [video_part(_media_url(block, block.video, block.video_mimetype), block.fps)]


def _document_parts(block: DocumentBlock) -> list[Part]:
    """A file by id (``url='fileid://...'``), or a text document as text; others are refused."""
    referenced = file_id_from_url(block.url or "")
    if referenced:
        return [file_part(referenced)]
    mimetype = block.document_mimetype or ""
    if mimetype.startswith("text/") and (block.data is not None or block.path is not None):
        text = block.resolve_document().read().decode("utf-8", errors="replace")
        return [text_part(text)]
    raise RequestValidationError(
        "DocumentBlock",
        {"title": block.title, "mimetype": mimetype or None},
        "a file id (fileid://...) or a text document",
        _UPLOAD_HINT,
    )


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
        return data_url(mimetype, data.decode("ascii"))
    return str(block.inline_url())


_PART_BUILDERS: tuple[tuple[type, Callable[[Any], list[Part]]], ...] = (
    (TextBlock, _text_parts),
    (ImageBlock, _image_parts),
    (AudioBlock, _audio_parts),
    (VideoBlock, _video_parts),
    (DocumentBlock, _document_parts),
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
        return [wire_tool_call(b.tool_call_id, b.tool_name, b.tool_kwargs) for b in blocks]
    return [legacy_tool_call(call) for call in message.additional_kwargs.get("tool_calls") or ()]


def tool_spec(tool: BaseTool) -> dict[str, Any]:
    """The OpenAI tool dict of a LlamaIndex tool (descriptions are not cut at 1024 chars)."""
    return tool.metadata.to_openai_tool(skip_length_check=True)


# ----------------------------------------------------------------------------------------------
# Response side
# ----------------------------------------------------------------------------------------------


def response_fields(completion: Mapping[str, Any], choice: Mapping[str, Any]) -> dict[str, Any]:
    """The ``additional_kwargs`` of a response: token counts, finish reason, request id, model.

    The counts keep the core's names (``prompt_tokens``, ``completion_tokens``, ...), which
    LlamaIndex's token counter reads.
    """
    fields: dict[str, Any] = dict(usage_counts(completion.get("usage")) or {})
    fields["finish_reason"] = choice.get("finish_reason")
    fields["request_id"] = completion.get("request_id")
    fields["model"] = completion.get("model")
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
    audio: AudioBlock | None = None,
) -> ChatMessage:
    """The assistant ChatMessage: ThinkingBlock, TextBlock, AudioBlock, ToolCallBlocks, in order.

    The text block is left out only when there are tool calls and no text, so that
    ``message.content`` is None for a pure tool call and ``""`` for an empty answer.
    """
    blocks: list[Any] = []
    if reasoning:
        blocks.append(ThinkingBlock(content=reasoning, num_tokens=reasoning_tokens))
    if content or not tool_calls:
        blocks.append(TextBlock(text=content))
    if audio is not None:
        blocks.append(audio)
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


def chat_response(completion: Mapping[str, Any], audio_format: str | None = None) -> ChatResponse:
    """The ChatResponse of a ``chat.completion`` dict (first choice); ``raw`` is the dict.

    ``audio_format`` is the format of the spoken answer the call asked for (``wav`` if unsaid).
    """
    choice = first_choice(completion) or {}
    fields = response_fields(completion, choice)
    message = response_message(
        choice.get("message") or {}, fields.get("reasoning_tokens"), audio_format=audio_format
    )
    return ChatResponse(message=message, raw=completion, additional_kwargs=fields)


def response_message(
    wire: Mapping[str, Any],
    reasoning_tokens: int | None = None,
    call_id: Callable[[int], str] = lambda position: new_tool_call_id(),
    audio_format: str | None = None,
) -> ChatMessage:
    """The assistant ChatMessage of a wire ``message`` (a spoken answer as an ``AudioBlock``).

    ``call_id(position)`` names a tool call the service sent without an id (a tool result must
    name its call).
    """
    calls = [
        _response_tool_call(call, call.get("id") or call_id(position))
        for position, call in enumerate(wire.get("tool_calls") or ())
    ]
    audio = wire.get("audio")
    spoken = None
    if isinstance(audio, Mapping) and audio.get("data"):
        spoken = spoken_block(str(audio["data"]), audio_format)
    return assistant_message(
        content_text(wire.get("content")),
        wire.get("reasoning_content") or "",
        calls,
        reasoning_tokens,
        spoken,
    )


def spoken_block(base64_data: str, audio_format: str | None) -> AudioBlock:
    """The ``AudioBlock`` of a spoken answer's base64 audio (kept as it came: no re-encoding)."""
    return AudioBlock.model_construct(
        audio=base64_data.encode("ascii"), format=audio_format or DEFAULT_AUDIO_FORMAT
    )


def _response_tool_call(call: Mapping[str, Any], call_id: str) -> dict[str, Any]:
    function = call.get("function") or {}
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments or {}, ensure_ascii=False)
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": function.get("name") or "", "arguments": arguments},
    }


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

    ``add(chunk, stream.completion)`` is called with each chunk a core stream yields. ``delta``
    is the chunk's new content and ``additional_kwargs["thinking_delta"]`` its new reasoning;
    the message holds everything so far (only choice 0: with ``n > 1`` the other choices'
    chunks add nothing). Tool calls, usage and the finish reason are taken from the core's
    aggregate (``stream.completion()``, where the fragments were merged by ``index``, once),
    read again only when a chunk changes them; the text is the deltas joined as they come
    (rebuilding it from the aggregate on every chunk costs far more on long answers). A tool
    call sent without an id gets one that stays the same for the whole stream.
    """

    __slots__ = (
        "_audio",
        "_audio_format",
        "_audio_pieces",
        "_call_ids",
        "_calls",
        "_content",
        "_fields",
        "_reasoning",
    )

    def __init__(self, audio_format: str | None = None) -> None:
        self._content = ""
        self._reasoning = ""
        self._calls: list[dict[str, Any]] = []
        self._call_ids: dict[int, str] = {}
        self._fields: dict[str, Any] | None = None
        self._audio_format = audio_format
        self._audio_pieces: list[str] = []
        self._audio: AudioBlock | None = None

    def add(
        self, chunk: Mapping[str, Any], completion: Callable[[], Mapping[str, Any]]
    ) -> ChatResponse:
        """The ChatResponse for ``chunk`` (its ``raw``).

        ``completion()`` is the core's aggregate of the stream so far, this chunk included.
        """
        choice = first_choice(chunk)
        delta = (choice.get("delta") or {}) if choice is not None else {}
        content = delta.get("content") or ""
        reasoning = delta.get("reasoning_content") or ""
        self._content += content
        self._reasoning += reasoning
        spoken = self._add_audio(delta.get("audio"))
        if self._fields is None or _changes_the_aggregate(chunk, choice, delta):
            self._take(completion())
        fields = self._fields or {}
        if reasoning:
            fields = {**fields, "thinking_delta": reasoning}
        if spoken:
            fields = {**fields, "audio_delta": spoken}
        return ChatResponse(
            message=self._message(fields.get("reasoning_tokens")),
            delta=content,
            raw=chunk,
            additional_kwargs=fields,
        )

    def _add_audio(self, audio: Any) -> str:
        """The base64 audio this chunk adds to a spoken answer (the block is rebuilt once)."""
        piece = audio.get("data") if isinstance(audio, Mapping) else None
        if not isinstance(piece, str) or not piece:
            return ""
        self._audio_pieces.append(piece)
        self._audio = spoken_block("".join(self._audio_pieces), self._audio_format)
        return piece

    def _take(self, completion: Mapping[str, Any]) -> None:
        choice = first_choice(completion) or {}
        self._fields = response_fields(completion, choice)
        self._calls = list((choice.get("message") or {}).get("tool_calls") or ())

    def _message(self, reasoning_tokens: int | None) -> ChatMessage:
        calls = [
            _response_tool_call(call, call.get("id") or self._id(position))
            for position, call in enumerate(self._calls)
        ]
        return assistant_message(
            self._content, self._reasoning, calls, reasoning_tokens, self._audio
        )

    def _id(self, position: int) -> str:
        call_id = self._call_ids.get(position)
        if call_id is None:
            call_id = self._call_ids[position] = new_tool_call_id()
        return call_id


def _changes_the_aggregate(
    chunk: Mapping[str, Any], choice: Mapping[str, Any] | None, delta: Mapping[str, Any]
) -> bool:
    """Whether ``chunk`` brings tool-call fragments, usage or choice 0's finish reason."""
    finished = choice is not None and bool(choice.get("finish_reason"))
    return bool(delta.get("tool_calls") or chunk.get("usage") or finished)


# ----------------------------------------------------------------------------------------------
# Tool selections
# ----------------------------------------------------------------------------------------------


def tool_selections(message: ChatMessage, *, streaming: bool = False) -> list[ToolSelection]:
    """The tool calls of a message as ToolSelections.

    While ``streaming`` (no finish reason yet), arguments that are still arriving are parsed
    as far as they go; a finished call's arguments must be a JSON object, else ``ValueError``
    names the tool, the call id and the arguments received.
    """
    blocks = [block for block in message.blocks if isinstance(block, ToolCallBlock)]
    if blocks:
        calls = [(b.tool_call_id or "", b.tool_name, b.tool_kwargs) for b in blocks]
    else:
        legacy = [legacy_tool_call(c) for c in message.additional_kwargs.get("tool_calls") or ()]
        calls = [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in legacy]
    return [_selection(*call, streaming=streaming) for call in calls]


def _selection(
    call_id: str, name: str, arguments: str | dict[str, Any], *, streaming: bool
) -> ToolSelection:
    if streaming:
        return ToolSelection(
            tool_id=call_id, tool_name=name, tool_kwargs=parse_arguments(arguments)
        )
    try:
        kwargs = parse_tool_arguments(arguments)
    except ValueError as error:
        raise ValueError(
            f"The model called tool {name!r} (call id {call_id!r}) with arguments that are not "
            f"a JSON object ({error}): {str(arguments)[:500]!r}"
        ) from error
    return ToolSelection(tool_id=call_id, tool_name=name, tool_kwargs=kwargs)


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
