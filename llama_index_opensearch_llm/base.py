"""``OpenSearchLLM``: a LlamaIndex ``FunctionCallingLLM`` on the ``opensearch_llm`` core client.

The adapter converts messages and responses (``_convert``); the core sends, retries, decodes
streams, applies the per-model thinking policy and raises typed errors.
"""

from __future__ import annotations

import copy
import logging
import pickle
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

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
from llama_index.core.bridge.pydantic import Field, PrivateAttr, SecretStr
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from pydantic import BaseModel

from llama_index_opensearch_llm._convert import (
    ChatStreamState,
    chat_response,
    completion_response,
    keep_first_tool_call,
    to_wire_messages,
    tool_selections,
    tool_spec,
)
from opensearch_llm import AsyncChatClient, ChatClient, get_profile
from opensearch_llm._adapters import (
    CHAT_OPTION_NAMES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MODEL,
    AsyncHttpClient,
    ClientCache,
    OwnsClients,
    SyncHttpClient,
    count_message_tokens,
    forced_tool_settings,
    qwen_encoder,
    resolve_base_url,
    sent_value,
    split_params,
    validate_params,
    wire_tool_choice,
)

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

logger = logging.getLogger(__name__)

#: Fields sent as request parameters when set (None means not sent).
_PARAM_FIELDS: tuple[str, ...] = (
    "max_tokens",
    "temperature",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "stop",
    "seed",
    "enable_thinking",
    "thinking_budget",
    "enable_search",
    "top_k",
    "repetition_penalty",
    "modalities",
    "audio",
    "search_options",
    "translation_options",
    "vl_high_resolution_images",
    "enable_code_interpreter",
    "incremental_output",
)
#: Fields that hold live objects: not pickled (made afresh, or defaulted, after unpickling).
_TRANSIENT_FIELDS = frozenset(
    {"http_client", "async_http_client", "callback_manager", "rate_limiter"}
)


class OpenSearchLLM(OwnsClients, FunctionCallingLLM):
    """Alibaba Cloud OpenSearch LLM, Model Studio (DashScope) and AI gateway chat models.

    The API key comes from ``api_key``, else ``OPENSEARCH_LLM_API_KEY``, else
    ``DASHSCOPE_API_KEY``; a missing key is reported (``MissingAPIKeyError``) on the first
    call, while a bad endpoint or parameter fails at construction. Only the parameters you set
    are sent. Reasoning arrives as ``ThinkingBlock``s; usage, ``finish_reason``, ``request_id``
    and ``model`` are in each response's ``additional_kwargs``.

    Qwen: ``ImageBlock``, ``AudioBlock``, ``VideoBlock`` and ``DocumentBlock`` (by file id,
    ``fileid://...``, or text) are sent as the service's parts; a ``CachePoint`` marks the block
    before it for the context cache; ``additional_kwargs={"partial": True}`` on a last assistant
    message asks to continue it; a spoken answer (``modalities``, ``audio``) is an
    ``AudioBlock``; ``tokenizer`` is Qwen's (``Settings.tokenizer = llm.tokenizer``).

    Connections: one pooled core client for the sync methods and one per event loop for the
    async ones, made on first use; ``close()``/``aclose()`` close them (``aclose`` the running
    loop's). An injected ``async_http_client`` is used from every loop, so inject one only
    where a single loop uses it.

    Example::

        from llama_index.core import Settings
        from llama_index_opensearch_llm import OpenSearchLLM

        Settings.llm = OpenSearchLLM(model="qwen-plus", region="singapore")
        print(Settings.llm.complete("Recommend one science fiction book").text)
    """

    model: str = Field(default=DEFAULT_MODEL, description="Model name, e.g. 'qwen-plus'.")
    api_key: SecretStr | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description="API key; default: OPENSEARCH_LLM_API_KEY, then DASHSCOPE_API_KEY.",
    )
    base_url: str | None = Field(
        default=None,
        description="Compatible-mode or gateway base URL ('.../compatible-mode/v1', '.../api/v1').",
    )
    region: str | None = Field(
        default=None, description="Model Studio region: singapore, virginia, beijing, hongkong."
    )
    timeout: float | None = Field(default=None, description="Seconds for a whole response.")
    connect_timeout: float | None = Field(default=None, description="Seconds to connect.")
    stream_idle_timeout: float | None = Field(
        default=None, description="Seconds to wait for each streamed chunk."
    )
    stream_timeout: float | None = Field(
        default=None, description="Seconds for a whole stream (default: no limit)."
    )
    max_response_bytes: int | None = Field(
        default=None, gt=0, description="Bytes of a response before it is refused (64 MiB)."
    )
    max_event_bytes: int | None = Field(
        default=None, gt=0, description="Bytes of a streamed event before it is refused (16 MiB)."
    )
    max_connections: int | None = Field(
        default=None, gt=0, description="Connections open at once at most (256)."
    )
    max_retries: int = Field(default=DEFAULT_MAX_RETRIES, ge=0, description="Retries (core).")
    default_headers: dict[str, str] | None = Field(
        default=None, exclude=True, repr=False, description="Headers sent with every request."
    )

    max_tokens: int | None = Field(default=None, gt=0, description="Max tokens to generate.")
    temperature: float | None = Field(default=None, description="Sampling temperature [0, 2).")
    top_p: float | None = Field(default=None, description="Nucleus sampling (0, 1].")
    presence_penalty: float | None = Field(default=None, description="[-2, 2].")
    frequency_penalty: float | None = Field(default=None, description="[-2, 2].")
    stop: str | list[str] | None = Field(default=None, description="Stop sequence(s).")
    seed: int | None = Field(default=None, description="Random seed.")
    enable_thinking: bool | None = Field(
        default=None, description="Qwen: switch thinking on or off (hybrid models)."
    )
    thinking_budget: int | None = Field(default=None, gt=0, description="Qwen: reasoning tokens.")
    enable_search: bool | None = Field(default=None, description="Qwen: web search.")
    top_k: int | None = Field(default=None, ge=0, description="Qwen: top-k sampling.")
    repetition_penalty: float | None = Field(default=None, description="Qwen: > 0.")
    modalities: list[str] | None = Field(
        default=None, description="Qwen-Omni: ['text', 'audio'] for a spoken answer (AudioBlock)."
    )
    audio: dict[str, Any] | None = Field(
        default=None, description="Qwen-Omni: the voice and format, {'voice': 'Cherry', ...}."
    )
    search_options: dict[str, Any] | None = Field(
        default=None, description="Qwen: web search options, with enable_search=True."
    )
    translation_options: dict[str, Any] | None = Field(
        default=None, description="Qwen-MT: {'source_lang': 'auto', 'target_lang': ...}."
    )
    vl_high_resolution_images: bool | None = Field(
        default=None, description="Qwen-VL: read images at a higher resolution."
    )
    enable_code_interpreter: bool | None = Field(
        default=None, description="Qwen: run Python while thinking (streamed)."
    )
    incremental_output: bool | None = Field(
        default=None, description="Qwen: True only (streamed deltas)."
    )
    additional_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="More request fields; names the core does not know go in the JSON body.",
    )

    context_window: int | None = Field(
        default=None, gt=0, description="Overrides the model profile's context window."
    )
    num_output: int | None = Field(
        default=None, gt=0, description="Overrides metadata.num_output (not sent)."
    )
    is_function_calling_model: bool | None = Field(
        default=None, description="Overrides whether the model profile supports tools."
    )

    http_client: SyncHttpClient = Field(
        default=None, exclude=True, repr=False, description="An httpx.Client to send with."
    )
    async_http_client: AsyncHttpClient = Field(
        default=None, exclude=True, repr=False, description="An httpx.AsyncClient to send with."
    )

    _clients: ClientCache[ChatClient, AsyncChatClient] = PrivateAttr(default_factory=ClientCache)
    CLIENT_FIELDS: ClassVar[frozenset[str]] = frozenset(
        (*CHAT_OPTION_NAMES, "http_client", "async_http_client")
    )

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        # Fail at construction, not at the first call, on a bad endpoint or parameter.
        resolve_base_url(self.base_url, self.region)
        validate_params(self._params({}))

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex serialises this class under."""
        return "OpenSearchLLM"

    @property
    def metadata(self) -> LLMMetadata:
        """Context window, output limit and tool support from the model's profile."""
        profile = get_profile(self.model)
        supports_tools = self.is_function_calling_model
        return LLMMetadata(
            context_window=self.context_window or profile.context_window,
            num_output=self.num_output or self.max_tokens or profile.max_output,
            is_chat_model=True,
            is_function_calling_model=profile.tools if supports_tools is None else supports_tools,
            model_name=self.model,
        )

    @property
    def tokenizer(self) -> Callable[[str], list[int]]:
        """Qwen's tokenizer for this model, offline (the ``[tokens]`` extra).

        ``Settings.tokenizer = llm.tokenizer`` makes LlamaIndex count (token counters, text
        splitters, prompt fitting) in the model's own tokens.
        """
        return qwen_encoder(self.model)

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Qwen tokens of a chat as the model reads it, framing included.

        Each message adds 5 tokens and the reply's opening 3; images, audio and video are not
        counted. The service's ``usage.prompt_tokens`` for plain text comes within a few tokens.
        """
        return count_message_tokens(to_wire_messages(messages), self.model)

    # ------------------------------------------------------------------------- clients

    def _sync_client(self) -> ChatClient:
        """The instance's core client, made on first use and reused."""
        return self._clients.sync(
            lambda: ChatClient(http_client=self.http_client, **self._options())
        )

    def _async_client(self) -> AsyncChatClient:
        """The running event loop's core client, made on first use in that loop and reused."""
        return self._clients.async_(
            lambda: AsyncChatClient(http_client=self.async_http_client, **self._options())
        )

    def _options(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CHAT_OPTION_NAMES}

    def close(self) -> None:
        """Close the sync connection pool (an injected ``http_client`` is left open)."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close this event loop's connection pool (an injected client is left open)."""
        await self._clients.aclose()

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle the settings only; clients are made again on first use after unpickling."""
        state = BaseModel.__getstate__(self)
        fields = {
            name: value
            for name, value in state["__dict__"].items()
            if name not in _TRANSIENT_FIELDS and _can_pickle(name, value)
        }
        return {**state, "__dict__": fields, "__pydantic_private__": None}

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> OpenSearchLLM:
        """A copy that shares the live objects (http clients, callbacks) but no core client."""
        fields = {
            name: value if name in _TRANSIENT_FIELDS else copy.deepcopy(value, memo)
            for name, value in self.__dict__.items()
        }
        return type(self).model_construct(_fields_set=set(self.model_fields_set), **fields)

    # ------------------------------------------------------------------------- requests

    def _params(self, call: Mapping[str, Any]) -> dict[str, Any]:
        """The core's parameters: the fields, then ``additional_kwargs``, then ``call``."""
        fields = {name: getattr(self, name) for name in _PARAM_FIELDS}
        return split_params(fields, self.additional_kwargs, call)

    def _model_and_params(self, kwargs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        call = dict(kwargs)
        model = call.pop("model", None) or self.model
        return model, self._params(call)

    def _request(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The core call's keywords: model, wire messages and the parameters that are set."""
        model, params = self._model_and_params(kwargs)
        return {"model": model, "messages": to_wire_messages(messages), **params}

    @staticmethod
    def _prompt_messages(prompt: str) -> list[ChatMessage]:
        return [ChatMessage(role=MessageRole.USER, content=prompt)]

    # ------------------------------------------------------------------------- sync

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """One chat completion."""
        return self._chat(messages, kwargs)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """One completion of ``prompt`` (sent as a user message)."""
        return completion_response(self._chat(self._prompt_messages(prompt), kwargs))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """Stream a chat completion: one cumulative ChatResponse per chunk."""
        return self._stream_chat(self._request(messages, kwargs))

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        """Stream a completion of ``prompt``: one cumulative CompletionResponse per chunk."""
        chats = self._stream_chat(self._request(self._prompt_messages(prompt), kwargs))
        return (completion_response(response) for response in chats)

    def _chat(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> ChatResponse:
        request = self._request(messages, kwargs)
        completion = self._sync_client().create(**request)
        return chat_response(completion, _audio_format(request))

    def _stream_chat(self, request: dict[str, Any]) -> ChatResponseGen:
        # The request is sent at the first next(); the stream is closed on exit, error or break.
        state = ChatStreamState(_audio_format(request))
        with self._sync_client().stream(**request) as stream:
            for chunk in stream:
                yield state.add(chunk, stream.completion)

    # ------------------------------------------------------------------------- async

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """One chat completion, asynchronously."""
        return await self._achat(messages, kwargs)

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        """One completion of ``prompt``, asynchronously."""
        return completion_response(await self._achat(self._prompt_messages(prompt), kwargs))

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        """Stream a chat completion asynchronously: one cumulative ChatResponse per chunk."""
        return self._astream_chat(self._request(messages, kwargs))

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        """Stream a completion of ``prompt`` asynchronously."""
        chats = self._astream_chat(self._request(self._prompt_messages(prompt), kwargs))
        return _completions(chats)

    async def _achat(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> ChatResponse:
        request = self._request(messages, kwargs)
        completion = await self._async_client().create(**request)
        return chat_response(completion, _audio_format(request))

    async def _astream_chat(self, request: dict[str, Any]) -> ChatResponseAsyncGen:
        state = ChatStreamState(_audio_format(request))
        async with self._async_client().stream(**request) as stream:
            async for chunk in stream:
                yield state.add(chunk, stream.completion)

    # ------------------------------------------------------------------------- tools

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        tool_choice: str | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The ``chat`` keywords for a tool-calling turn; ``chat_history`` is not modified.

        ``tool_choice`` (``auto``, ``none``, ``required``, a tool name or a dict) is sent as
        given. ``tool_required`` asks for a call: for a hybrid model that would think by
        default it also sends ``enable_thinking: false`` (thinking rejects a forced choice);
        when the model thinks anyway it falls back to ``auto``.
        """
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            user_msg = ChatMessage(role=MessageRole.USER, content=user_msg)
        if user_msg is not None:
            messages.append(user_msg)
        result: dict[str, Any] = {"messages": messages, **kwargs}
        specs = [tool_spec(tool) for tool in tools]
        if not specs:
            return result
        result["tools"] = specs
        result["parallel_tool_calls"] = allow_parallel_tool_calls
        if tool_choice is not None:
            result["tool_choice"] = wire_tool_choice(tool_choice)
        elif tool_required:
            result.update(self._required_tool_choice(kwargs))
        return result

    def _required_tool_choice(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """``tool_choice: required``, made compatible with the model's thinking mode."""
        model, params = self._model_and_params(kwargs)
        thinking = sent_value(params, "enable_thinking")
        settings = forced_tool_settings(model, thinking, "required")
        if settings["tool_choice"] == "auto":
            logger.info("%s thinks, which rejects a forced tool call: tool_choice=auto", model)
        return settings

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        """Keep only the first tool call unless parallel calls are allowed."""
        if not allow_parallel_tool_calls:
            keep_first_tool_call(response.message)
        return response

    def get_tool_calls_from_response(
        self,
        response: ChatResponse,
        error_on_no_tool_call: bool = True,
        **kwargs: Any,
    ) -> list[ToolSelection]:
        """The response's tool calls; arguments parse even while still streaming.

        Once the response is finished (it has a finish reason, or is not streamed), arguments
        that are not a JSON object raise ``ValueError`` naming the tool and the call id.
        """
        streaming = response.delta is not None and not response.additional_kwargs.get(
            "finish_reason"
        )
        selections = tool_selections(response.message, streaming=streaming)
        if not selections and error_on_no_tool_call:
            raise ValueError(
                f"Expected at least one tool call from {self.model}, got none; "
                f"the answer was: {(response.message.content or '')[:200]!r}"
            )
        return selections


def _audio_format(request: Mapping[str, Any]) -> str | None:
    """The format of the spoken answer a request asks for (``audio.format``), if it says."""
    audio = sent_value(request, "audio")
    return audio.get("format") if isinstance(audio, Mapping) else None


def _can_pickle(name: str, value: Any) -> bool:
    """Whether ``value`` pickles; a field that does not is left out (e.g. a lambda prompt hook)."""
    try:
        pickle.dumps(value)
    except Exception:
        logger.debug("OpenSearchLLM: field %s is not picklable and is left out", name)
        return False
    return True


async def _completions(chats: AsyncIterator[ChatResponse]) -> CompletionResponseAsyncGen:
    async for response in chats:
        yield completion_response(response)


__all__ = ["OpenSearchLLM"]
