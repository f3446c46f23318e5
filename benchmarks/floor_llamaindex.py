"""The LlamaIndex floor: the least an ``LLM`` over raw httpx does for chat.

``chat``, ``stream_chat`` (a cumulative message per chunk, as LlamaIndex's contract asks) and
``achat``, under LlamaIndex's own callback decorators; content only, no retries or validation.
The completion methods are not measured and raise.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NoReturn

import httpx
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms import LLM
from llama_index.core.llms.callbacks import llm_chat_callback
from pydantic import PrivateAttr


class FloorLLM(LLM):
    model: str
    api_base: str
    api_key: str
    _http: httpx.Client = PrivateAttr()
    _ahttp: httpx.AsyncClient = PrivateAttr()

    def __init__(
        self, *, http_client: httpx.Client, async_http_client: httpx.AsyncClient, **data: Any
    ) -> None:
        super().__init__(**data)
        self._http = http_client
        self._ahttp = async_http_client

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(is_chat_model=True, model_name=self.model)

    def _post_args(self, messages: Sequence[ChatMessage], stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role.value, "content": m.content} for m in messages],
        }
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return {
            "url": self.api_base + "/chat/completions",
            "json": body,
            "headers": {"Authorization": f"Bearer {self.api_key}"},
        }

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        response = self._http.post(**self._post_args(messages, stream=False))
        return _response(json.loads(response.content))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        response = await self._ahttp.post(**self._post_args(messages, stream=False))
        return _response(json.loads(response.content))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        def responses() -> ChatResponseGen:
            text = ""
            with self._http.stream("POST", **self._post_args(messages, stream=True)) as response:
                for line in response.iter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        choices = json.loads(line[6:])["choices"]
                        delta = choices[0]["delta"].get("content") or "" if choices else ""
                        text += delta
                        message = ChatMessage(role=MessageRole.ASSISTANT, content=text)
                        yield ChatResponse(message=message, delta=delta)

        return responses()

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        _not_measured()

    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        _not_measured()

    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        _not_measured()

    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        _not_measured()

    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        _not_measured()


def _response(answer: dict[str, Any]) -> ChatResponse:
    content = answer["choices"][0]["message"]["content"] or ""
    return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=content))


def _not_measured() -> NoReturn:
    raise NotImplementedError("the benchmark floor implements chat, stream_chat and achat only")
