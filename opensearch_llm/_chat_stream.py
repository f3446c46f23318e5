"""From the bytes of a chat stream to chunks: frames, envelopes, errors, accumulation. Pure.

The sync and async shells feed this decoder whatever the network gives them; everything that
can go wrong with the content is decided here, once for both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from opensearch_llm._accumulate import StreamAccumulator
from opensearch_llm._bodies import event_error, parse_event_data, request_id_of
from opensearch_llm._chat_wire import chunk_from_frame, completion_problem, completion_to_chunk
from opensearch_llm._config import DEFAULT_MAX_EVENT_BYTES
from opensearch_llm._errors import (
    OpenSearchLLMError,
    ResponseDecodeError,
    StreamError,
    broken_stream,
)
from opensearch_llm._framing import Frame, Framer


class ChatChunkDecoder:
    """Bytes of a chat stream in, normalised ``chat.completion.chunk`` dicts out."""

    __slots__ = ("_framer", "_id_from_body", "accumulator", "done", "request_id")

    def __init__(
        self, request_id: str | None = None, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    ) -> None:
        self._framer = Framer(max_event_bytes)
        self.accumulator = StreamAccumulator()
        #: ``[DONE]`` was received.
        self.done = False
        #: The response header's id until a chunk names one (the body's id wins).
        self.request_id = request_id
        self._id_from_body = False

    @property
    def finished(self) -> bool:
        """A choice has finished: only usage and ``[DONE]`` may follow."""
        return self.accumulator.finished

    def feed(self, data: bytes) -> Iterator[dict[str, Any]]:
        """The chunks completed by ``data``, in order; raises where a frame carries an error."""
        return self._chunks(self._framer.feed(data))

    def finish(self) -> Iterator[dict[str, Any]]:
        """The last chunks at the end of the body; ``StreamError`` if the stream was cut short."""
        yield from self._chunks(self._framer.flush())
        if self._framer.cut_short:
            raise self.broken(StreamError("the stream ended in the middle of a frame"))
        if not self.done and not self.accumulator.finished:
            raise self.broken(StreamError("the stream ended before the model finished"))

    def feed_body(self, completion: Any) -> list[dict[str, Any]]:
        """The one chunk of a service that answered a stream request with a whole completion."""
        if completion_problem(completion) is not None:
            raise ResponseDecodeError(
                f"the answer is not a chat.completion: {str(completion)[:200]}"
            )
        self.request_id = request_id_of(completion) or self.request_id  # the body's id first
        self.done = True
        return [self._normalised(completion_to_chunk(completion))]

    def result(self) -> dict[str, Any]:
        """The ``chat.completion`` received so far."""
        return self.accumulator.result(self.request_id)

    def broken(self, cause: OpenSearchLLMError) -> OpenSearchLLMError:
        """The error to raise for ``cause``: itself if nothing came yet, else a ``StreamError``."""
        return cause if self.accumulator.is_empty() else broken_stream(cause, self.result())

    def _chunks(self, frames: list[Frame]) -> Iterator[dict[str, Any]]:
        for frame in frames:
            if self.done:
                break
            values, self.done = parse_event_data(frame.data)
            for value in values:
                if frame.event == "error":
                    raise event_error(value)
                chunk = chunk_from_frame(value)
                if not self._id_from_body:
                    self._take_request_id(chunk)
                yield self._normalised(chunk)

    def _normalised(self, chunk: dict[str, Any]) -> dict[str, Any]:
        """``chunk`` as every caller gets it, merged into the answer so far.

        Each tool-call fragment is completed in place: the index of the call it belongs to
        (a stream's state decides it), ``id`` (None when absent), ``type`` and ``function:
        {name, arguments}``; the adapters' stream converters rely on that shape.
        """
        self.accumulator.add(chunk)
        return chunk

    def _take_request_id(self, chunk: dict[str, Any]) -> None:
        found = request_id_of(chunk)
        if found:
            self.request_id, self._id_from_body = found, True
