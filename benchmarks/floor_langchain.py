"""The LangChain floor: the least a ``BaseChatModel`` over raw httpx does.

Content only (no usage, tool calls or metadata), no retries, no validation: what remains is the
framework's own cost (callbacks, run managers, message and generation objects), so that
ChatOpenSearchLLM's and ChatOpenAI's cost can be split into LangChain's and their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


class FloorChatModel(BaseChatModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_name: str
    base_url: str
    api_key: str
    http_client: httpx.Client
    http_async_client: httpx.AsyncClient

    @property
    def _llm_type(self) -> str:
        return "benchmark-floor"

    def _post_args(self, messages: list[BaseMessage], stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_name,
            "messages": [{"role": _ROLES[m.type], "content": m.content} for m in messages],
        }
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return {
            "url": self.base_url + "/chat/completions",
            "json": body,
            "headers": {"Authorization": f"Bearer {self.api_key}"},
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        response = self.http_client.post(**self._post_args(messages, stream=False))
        return _result(json.loads(response.content))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        response = await self.http_async_client.post(**self._post_args(messages, stream=False))
        return _result(json.loads(response.content))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        with self.http_client.stream("POST", **self._post_args(messages, stream=True)) as response:
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    choices = json.loads(line[6:])["choices"]
                    text = choices[0]["delta"].get("content") or "" if choices else ""
                    chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
                    if run_manager:
                        run_manager.on_llm_new_token(text, chunk=chunk)
                    yield chunk


def _result(answer: dict[str, Any]) -> ChatResult:
    message = AIMessage(content=answer["choices"][0]["message"]["content"] or "")
    return ChatResult(generations=[ChatGeneration(message=message)])
