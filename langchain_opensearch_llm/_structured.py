"""Tool parsers for ``with_structured_output`` when the model cannot be forced to call the tool.

A thinking model rejects a forced ``tool_choice`` (docs/service-facts.md, "Thinking models"),
so structured output asks it with ``tool_choice="auto"``; it may then answer in text.
LangChain's ``first_tool_only`` parsers return ``None`` for such an answer (and a stream
yields nothing); these subclasses raise ``OutputParserException`` instead, naming the model
and why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.exceptions import OutputParserException
from langchain_core.messages import BaseMessage, BaseMessageChunk
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.output_parsers.transform import BaseCumulativeTransformOutputParser
from langchain_core.outputs import ChatGenerationChunk, Generation


class _ToolCallRequired(BaseCumulativeTransformOutputParser[Any]):
    """An answer without a call of ``tool_name`` is an error, invoked or streamed."""

    model_name: str
    """The model that was asked (named in the error)."""
    tool_name: str
    """The tool the answer should call."""

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> Any:
        """The parsed call; ``OutputParserException`` for a finished answer without one."""
        parsed = super().parse_result(result, partial=partial)
        if parsed is None and not partial:
            raise self._no_tool_call(result[0].text if result else "")
        return parsed

    def _transform(self, input: Iterator[str | BaseMessage]) -> Iterator[Any]:
        chunks: list[str | BaseMessage] = []
        parsed_any = False
        for parsed in super()._transform(_recording(input, chunks)):
            parsed_any = True
            yield parsed
        if not parsed_any:
            yield self._parse_whole(chunks)

    async def _atransform(self, input: AsyncIterator[str | BaseMessage]) -> AsyncIterator[Any]:
        chunks: list[str | BaseMessage] = []
        parsed_any = False
        async for parsed in super()._atransform(_arecording(input, chunks)):
            parsed_any = True
            yield parsed
        if not parsed_any:
            yield self._parse_whole(chunks)

    def _parse_whole(self, chunks: list[str | BaseMessage]) -> Any:
        # Nothing parsed while streaming: parse the whole answer once, which raises the
        # precise error (no tool call, or arguments that do not fit the schema).
        messages = [chunk for chunk in chunks if isinstance(chunk, BaseMessageChunk)]
        if not messages:
            raise self._no_tool_call("".join(_text(chunk) for chunk in chunks))
        whole = messages[0] if len(messages) == 1 else messages[0] + messages[1:]
        return self.parse_result([ChatGenerationChunk(message=whole)])

    def _no_tool_call(self, text: str) -> OutputParserException:
        return OutputParserException(
            f"{self.model_name} answered without calling the {self.tool_name!r} tool. It thinks "
            "before answering, and the service rejects a forced tool call while a model thinks, "
            "so with_structured_output sent tool_choice='auto'. Use a model that does not think, "
            "send enable_thinking=False (hybrid models), or ask for the tool in the prompt. "
            f"The answer began: {text[:200]!r}",
            llm_output=text,
        )


class RequiredPydanticToolsParser(_ToolCallRequired, PydanticToolsParser):
    """``PydanticToolsParser(first_tool_only=True)`` that raises when there is no call."""


class RequiredJsonKeyToolsParser(_ToolCallRequired, JsonOutputKeyToolsParser):
    """``JsonOutputKeyToolsParser(first_tool_only=True)`` that raises when there is no call."""


def _text(chunk: str | BaseMessage) -> str:
    return chunk if isinstance(chunk, str) else chunk.text


def _recording(chunks: Iterator[str | BaseMessage], seen: list[str | BaseMessage]) -> Iterator[Any]:
    for chunk in chunks:
        seen.append(chunk)
        yield chunk


async def _arecording(
    chunks: AsyncIterator[str | BaseMessage], seen: list[str | BaseMessage]
) -> AsyncIterator[Any]:
    async for chunk in chunks:
        seen.append(chunk)
        yield chunk
