"""Merge streamed chunks into one ``chat.completion``. Pure; no I/O.

Tool-call fragments are merged by ``index`` (docs/service-facts.md, "Streams": the first
fragment carries ``id`` and ``function.name``, later ones ``"id": ""``). ``add`` completes each
fragment in place (``normalise_tool_fragment``), so that whoever reads the chunk afterwards sees
``index``, ``id`` (``None`` when absent), ``type`` and ``function: {"name", "arguments"}``
whatever the service sent: the chat stream decoder names that step
(``ChatChunkDecoder._normalised``) and yields only chunks that went through it.
"""

from __future__ import annotations

from typing import Any

#: Keys of streamed ``delta.audio`` whose pieces add up (base64 audio, its transcript).
_JOINED_AUDIO_KEYS = frozenset({"data", "transcript"})


class _Choice:
    __slots__ = (
        "_wire_index",
        "audio",
        "content",
        "finish_reason",
        "logprobs",
        "reasoning",
        "role",
        "tool_calls",
    )

    def __init__(self) -> None:
        self.role = "assistant"
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.logprobs: list[Any] | None = None
        #: A spoken answer: ``data`` and ``transcript`` pieces (joined at the end), other keys once.
        self.audio: dict[str, Any] | None = None
        #: The call each wire index feeds now (a new id at a taken index starts a new call).
        self._wire_index: dict[int, int] = {}

    def add(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if content:
            self.content.append(content)
        reasoning = delta.get("reasoning_content")
        if reasoning:
            self.reasoning.append(reasoning)
        if delta.get("audio"):
            self._add_audio(delta["audio"])
        tool_calls = delta.get("tool_calls")
        if tool_calls:
            for position, fragment in enumerate(tool_calls):
                self._add_tool_fragment(position, fragment)
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        logprobs = choice.get("logprobs")
        if logprobs and logprobs.get("content"):
            self.logprobs = (self.logprobs or []) + list(logprobs["content"])

    def _add_audio(self, piece: dict[str, Any]) -> None:
        """Add a streamed ``delta.audio`` piece (Qwen-Omni's spoken answers)."""
        audio = self.audio if self.audio is not None else {}
        for key, value in piece.items():
            if key in _JOINED_AUDIO_KEYS and isinstance(value, str):
                audio.setdefault(key, []).append(value)
            elif audio.get(key) is None:
                audio[key] = value
        self.audio = audio

    def _add_tool_fragment(self, position: int, fragment: dict[str, Any]) -> None:
        normalise_tool_fragment(fragment, self._index_for(fragment, position))
        call = self.tool_calls.get(fragment["index"])
        function = fragment["function"]
        if call is None:
            self.tool_calls[fragment["index"]] = {
                "id": fragment["id"],
                "type": fragment["type"],
                "name": function["name"],
                "arguments": [function["arguments"]],
            }
            return
        if fragment["id"] and not call["id"]:
            call["id"] = fragment["id"]
        if function["name"] and not call["name"]:
            call["name"] = function["name"]
        call["arguments"].append(function["arguments"])

    def _index_for(self, fragment: dict[str, Any], position: int) -> int:
        index = fragment.get("index")
        new_id = fragment.get("id")
        if isinstance(index, int):
            ours = self._wire_index.get(index, index)
            taken = self.tool_calls.get(ours)
            if new_id and taken is not None and taken["id"] and taken["id"] != new_id:
                ours = self._wire_index[index] = max(self.tool_calls) + 1
            return ours
        # No index: a new id starts a call; a fragment without one continues the latest call.
        if new_id and all(call["id"] != new_id for call in self.tool_calls.values()):
            return max(self.tool_calls, default=-1) + 1
        if not self.tool_calls:
            return position
        return max(self.tool_calls)

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": self.role, "content": "".join(self.content)}
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        if self.audio is not None:
            message["audio"] = {
                key: "".join(value) if key in _JOINED_AUDIO_KEYS else value
                for key, value in self.audio.items()
            }
        if self.tool_calls:
            message["tool_calls"] = [
                _finished_call(self.tool_calls[i]) for i in sorted(self.tool_calls)
            ]
            if not self.content:
                message["content"] = None
        return message


def _finished_call(call: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": call["id"] or "",
        "type": call["type"],
        "function": {"name": call["name"] or "", "arguments": "".join(call["arguments"])},
    }


def normalise_tool_fragment(fragment: dict[str, Any], index: int) -> None:
    """Give a streamed tool-call fragment an ``index``, an ``id`` or None, and a full function."""
    fragment["index"] = index
    fragment["id"] = fragment.get("id") or None
    fragment["type"] = fragment.get("type") or "function"
    function = fragment.get("function") or {}
    fragment["function"] = {
        "name": function.get("name") or None,
        "arguments": function.get("arguments") or "",
    }


class StreamAccumulator:
    """Collects chunks as they arrive; ``result()`` is the ``chat.completion`` so far."""

    __slots__ = ("_choices", "_meta", "finished", "usage")

    def __init__(self) -> None:
        self._choices: dict[int, _Choice] = {}
        self._meta: dict[str, Any] = {}
        self.usage: dict[str, Any] | None = None
        #: Whether any choice has reported a ``finish_reason``.
        self.finished = False

    def add(self, chunk: dict[str, Any]) -> None:
        """Merge one ``chat.completion.chunk`` (normalising its tool-call fragments in place)."""
        if not self._meta:
            self._meta = {k: chunk.get(k) for k in ("id", "created", "model")}
        for choice in chunk.get("choices") or ():
            index = choice.get("index") or 0
            state = self._choices.get(index)
            if state is None:
                state = self._choices[index] = _Choice()
            state.add(choice)
            if choice.get("finish_reason"):
                self.finished = True
        if chunk.get("usage"):
            self.usage = chunk["usage"]

    def is_empty(self) -> bool:
        """Whether no chunk has been added yet."""
        return not self._meta

    def result(self, request_id: str | None = None) -> dict[str, Any]:
        """The ``chat.completion`` that the chunks so far add up to."""
        choices = [
            {
                "index": index,
                "message": state.message(),
                "finish_reason": state.finish_reason,
                "logprobs": {"content": state.logprobs} if state.logprobs is not None else None,
            }
            for index, state in sorted(self._choices.items())
        ]
        return {
            "id": self._meta.get("id"),
            "object": "chat.completion",
            "created": self._meta.get("created"),
            "model": self._meta.get("model"),
            "choices": choices,
            "usage": self.usage,
            "request_id": request_id,
        }


def aggregate_chunks(chunks: Any, request_id: str | None = None) -> dict[str, Any]:
    """The ``chat.completion`` that an iterable of chunks adds up to."""
    accumulator = StreamAccumulator()
    for chunk in chunks:
        accumulator.add(chunk)
    return accumulator.result(request_id)
