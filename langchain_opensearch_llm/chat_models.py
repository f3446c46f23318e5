"""``ChatOpenSearchLLM``: a LangChain chat model on the core's chat clients."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, ClassVar, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LangSmithParams, LanguageModelInput
from langchain_core.language_models import ModelProfile as LCModelProfile
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_function, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    model_validator,
)
from typing_extensions import Self

from langchain_opensearch_llm._convert import (
    PROVIDER,
    StreamConverter,
    audio_mime,
    completion_to_result,
    messages_to_wire,
    profile_to_langchain,
    wire_tool_choice,
)
from langchain_opensearch_llm._errors import langchain_errors
from langchain_opensearch_llm._structured import (
    RequiredJsonKeyToolsParser,
    RequiredPydanticToolsParser,
)
from opensearch_llm import AsyncChatClient, ChatClient, MissingAPIKeyError, get_profile
from opensearch_llm._adapters import (
    API_KEY_ENV_VARS,
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
    resolve_api_key,
    resolve_base_url,
    sent_value,
    split_params,
    validate_params,
)

StructuredMethod = Literal["function_calling", "json_mode", "json_schema"]

#: Model fields sent as request parameters when set.
_REQUEST_FIELDS: tuple[str, ...] = (
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "n",
    "seed",
    "user",
    "logprobs",
    "top_logprobs",
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
#: Model fields that configure the connection; they cannot change per call.
_CLIENT_FIELDS: frozenset[str] = frozenset(
    {
        "api_key",
        "dashscope_api_key",
        "base_url",
        "region",
        "timeout",
        "request_timeout",
        "connect_timeout",
        "stream_idle_timeout",
        "stream_timeout",
        "max_response_bytes",
        "max_event_bytes",
        "max_connections",
        "max_retries",
        "default_headers",
        "http_client",
        "http_async_client",
    }
)
# Keyword arguments LangChain passes down that are not request parameters.
_LANGCHAIN_KWARGS = ("stream", "ls_structured_output_format", "structured_output_format")


def _api_key_from_env() -> SecretStr | None:
    """The key the core would use: ``OPENSEARCH_LLM_API_KEY``, then ``DASHSCOPE_API_KEY``."""
    try:
        return resolve_api_key(None)
    except MissingAPIKeyError:
        return None


_Clients = ClientCache[ChatClient, AsyncChatClient]


class ChatOpenSearchLLM(OwnsClients, BaseChatModel):
    """Chat models of Alibaba Cloud OpenSearch LLM, Model Studio (DashScope) and the AI gateway.

    Built on ``opensearch_llm.ChatClient``/``AsyncChatClient``: retries, streaming, the gateway
    envelope and the thinking-model rules are handled there, the same for sync and async.

    Setup: ``pip install "opensearch-llm[langchain]"`` and set ``OPENSEARCH_LLM_API_KEY`` (or
    ``DASHSCOPE_API_KEY``). Choose the endpoint with ``region`` (singapore, virginia, beijing,
    hongkong) or ``base_url`` (an OpenSearch instance's ``.../compatible-mode/v1`` or a
    gateway's ``{BASE_URL}/api/v1``); default: ``OPENSEARCH_LLM_BASE_URL``, else Singapore.
    A missing key is reported (``MissingAPIKeyError``) on the first call.

    Example::

        from langchain_opensearch_llm import ChatOpenSearchLLM

        llm = ChatOpenSearchLLM(model="qwen-plus", region="singapore", temperature=0.3)
        llm.invoke("Recommend one science fiction book").content
        for chunk in llm.stream("Count to five"):
            print(chunk.content, end="")
        llm.invoke("Hi", model="qwq-plus").additional_kwargs["reasoning_content"]

    Offline, against the emulator::

        emu = opensearch_llm.emulator.Emulator()
        llm = ChatOpenSearchLLM(
            api_key="sk-test",
            base_url="http://emulator.local/compatible-mode/v1",
            http_client=httpx.Client(transport=emu.transport()),
            http_async_client=httpx.AsyncClient(transport=emu.async_transport()),
        )

    Parameters: only what you set is sent. ``model_kwargs`` and unknown ``invoke`` keywords go
    into the request body as they are; any field can be overridden per call
    (``llm.invoke(msgs, model="qwen-max", enable_thinking=True)``) except the connection
    settings (key, endpoint, timeouts, retries, headers, httpx clients).

    Output: reasoning is in ``additional_kwargs["reasoning_content"]`` and is the first
    ``content_blocks`` entry (``output_version="v1"`` stores the blocks in ``content``); it
    is never sent back in history. Usage (with cached and reasoning tokens) is on the message,
    and when streaming on the last chunk only (``stream_usage``, on by default).
    ``response_metadata`` has ``model_name``, ``finish_reason``, ``id``, ``request_id`` and
    ``model_provider="opensearch_llm"``. With ``n > 1`` each choice is a generation and calls
    are not streamed (LangChain merges a stream into one message); usage is on the first.

    Qwen: image, audio, video and file blocks in every LangChain form are sent as the
    service's parts (or refused, naming the models that take them); ``cache_control`` on a
    block is kept and cache writes and reads are in ``input_token_details``; an ``AIMessage``
    with ``additional_kwargs={"partial": True}`` last is a prefix to continue; with
    ``modalities=["text", "audio"]`` the answer's content is a text and an audio block;
    ``get_num_tokens_from_messages`` counts with Qwen's tokenizer (``[tokens]`` extra).

    Errors are the core's classes re-raised as subclasses that are also langchain-core's
    ``Model*Error`` (``ModelRateLimitError``, ``ContextOverflowError``, ...), for
    ``with_retry``/``with_fallbacks``.

    Serialization: ``dumps(llm)`` stores the key as a reference to ``OPENSEARCH_LLM_API_KEY``;
    revive with ``loads(text, allowed_objects=[ChatOpenSearchLLM], secrets_from_env=True)``.
    Pickling and copying drop the live connections; injected httpx clients are shared by
    copies, dropped by pickles, and never closed by the model (``close``/``aclose`` close
    the model's own pools). The async pool is one per event loop (``aclose`` closes the
    running loop's); an injected ``http_async_client`` is used from every loop, so inject one
    only where a single loop uses it. ``default_headers`` are never shown or serialized
    (they may carry credentials).
    """

    # The input of a failed validation would show the key: never print it.
    model_config = ConfigDict(
        populate_by_name=True, arbitrary_types_allowed=True, hide_input_in_errors=True
    )

    model_name: str = Field(default=DEFAULT_MODEL, alias="model")
    """Model name, e.g. ``qwen-plus``, ``qwen3-max``, ``qwq-plus``, ``ops-qwen-turbo``."""
    api_key: SecretStr | None = Field(
        default_factory=_api_key_from_env,
        validation_alias=AliasChoices("api_key", "dashscope_api_key"),
    )
    """API key; default: ``OPENSEARCH_LLM_API_KEY``, then ``DASHSCOPE_API_KEY``."""
    base_url: str | None = None
    """Base URL; requests go to ``{base_url}/chat/completions``. Exclusive with ``region``."""
    region: str | None = None
    """Model Studio region: singapore, virginia, beijing or hongkong."""
    timeout: float | None = Field(
        default=None, validation_alias=AliasChoices("timeout", "request_timeout")
    )
    """Seconds to wait for a whole non-streamed response (core default 600)."""
    connect_timeout: float | None = None
    """Seconds to wait for a connection (core default 10)."""
    stream_idle_timeout: float | None = None
    """Seconds to wait for the next streamed chunk (core default 120)."""
    stream_timeout: float | None = None
    """Seconds for a whole stream (core default: no limit)."""
    max_response_bytes: int | None = None
    """Bytes of a non-streamed response before it is refused (core default 64 MiB)."""
    max_event_bytes: int | None = None
    """Bytes of one streamed line or event before it is refused (core default 16 MiB)."""
    max_connections: int | None = None
    """Connections open at once at most; more requests wait (core default 256)."""
    max_retries: int = DEFAULT_MAX_RETRIES
    """Retries of 429, 5xx and connection errors (never after a stream's first byte)."""
    default_headers: dict[str, str] | None = Field(default=None, repr=False, exclude=True)
    """Headers sent with every request (not shown in a repr, not serialized)."""
    http_client: SyncHttpClient = Field(default=None, exclude=True)
    """An ``httpx.Client`` to send through (e.g. one on the emulator's transport)."""
    http_async_client: AsyncHttpClient = Field(default=None, exclude=True)
    """An ``httpx.AsyncClient`` to send through, for the async methods."""

    streaming: bool = False
    """Stream even when called with ``invoke``."""
    stream_usage: bool = True
    """Ask for token usage when streaming; it arrives on one chunk."""

    max_tokens: int | None = None
    """Most tokens to generate."""
    max_completion_tokens: int | None = None
    """Most completion tokens (the AI gateway's name); sent only when set."""
    temperature: float | None = None
    """Sampling temperature in [0, 2)."""
    top_p: float | None = None
    """Nucleus sampling threshold in (0, 1]."""
    presence_penalty: float | None = None
    """In [-2, 2]."""
    frequency_penalty: float | None = None
    """In [-2, 2]."""
    stop: list[str] | str | None = Field(
        default=None, validation_alias=AliasChoices("stop", "stop_sequences")
    )
    """Sequences that stop generation."""
    n: int | None = None
    """Completions per call, 1 to 4."""
    seed: int | None = None
    """Random seed."""
    user: str | None = None
    """End-user id (AI gateway)."""
    logprobs: bool | None = None
    """Return log probabilities of the output tokens."""
    top_logprobs: int | None = None
    """How many alternatives per token with ``logprobs``."""
    enable_thinking: bool | None = None
    """Qwen hybrid models: think before answering."""
    thinking_budget: int | None = None
    """Qwen: most reasoning tokens."""
    enable_search: bool | None = None
    """Qwen: let the model search the web."""
    top_k: int | None = None
    """Qwen: sample from the k most likely tokens."""
    repetition_penalty: float | None = None
    """Qwen: penalty for repeated tokens, > 0 (1.0 = none)."""
    modalities: list[Literal["text", "audio"]] | None = None
    """Qwen-Omni: ``["text", "audio"]`` for a spoken answer too (an audio content block)."""
    audio: dict[str, Any] | None = None
    """Qwen-Omni: the spoken answer's ``{"voice": "Cherry", "format": "wav"}``."""
    search_options: dict[str, Any] | None = None
    """Qwen: how to search the web, with ``enable_search=True`` (``search_strategy``, ...)."""
    translation_options: dict[str, Any] | None = None
    """Qwen-MT: ``{"source_lang": "auto", "target_lang": "English", "terms"?: [...]}``."""
    vl_high_resolution_images: bool | None = None
    """Qwen-VL: read images at a higher resolution (more tokens per image)."""
    enable_code_interpreter: bool | None = None
    """Qwen: run Python in a sandbox while thinking (the call is streamed)."""
    incremental_output: bool | None = None
    """Qwen: ``True`` only (streamed deltas); cumulative chunks are refused."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Other request parameters; those the core does not name go into the body as they are."""
    extra_body: dict[str, Any] | None = None
    """Merged into the JSON body of every request."""

    _clients: _Clients = PrivateAttr(default_factory=ClientCache)
    CLIENT_FIELDS: ClassVar[frozenset[str]] = frozenset(
        (*CHAT_OPTION_NAMES, "http_client", "http_async_client")
    )

    # ------------------------------------------------------------------ construction

    @model_validator(mode="before")
    @classmethod
    def _collect_model_kwargs(cls, values: Any) -> Any:
        """Unknown constructor keywords go to ``model_kwargs``, with a warning."""
        if not isinstance(values, dict):
            return values
        known = _field_names_and_aliases(cls)
        extra = dict(values.get("model_kwargs") or {})
        for name in list(values):
            if name not in known:
                warnings.warn(
                    f"{name!r} is not a ChatOpenSearchLLM field; it is sent in every request "
                    "body. Pass it in model_kwargs (or extra_body) to silence this warning.",
                    stacklevel=4,
                )
                extra[name] = values.pop(name)
        shadowed = sorted(set(extra) & known)
        if shadowed:
            raise ValueError(f"Set {shadowed} as fields of ChatOpenSearchLLM, not in model_kwargs.")
        if extra:
            values["model_kwargs"] = extra
        return values

    @model_validator(mode="after")
    def _check_settings(self) -> Self:
        """Fail at construction, not at the first call, on a bad endpoint or parameter."""
        resolve_base_url(self.base_url, self.region)
        validate_params(split_params(self._request_defaults()))
        return self

    def _resolve_model_profile(self) -> LCModelProfile | None:
        profile = profile_to_langchain(get_profile(self.model_name))
        # A later system message is merged into the leading one (``_convert``).
        profile["mid_conversation_system_messages"] = False
        return profile

    # ------------------------------------------------------------------ LangChain metadata

    @property
    def _llm_type(self) -> str:
        return "opensearch-llm-chat"

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """The model can be serialized with ``dumpd``/``dumps`` (without its key)."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """``["langchain_opensearch_llm", "chat_models"]``."""
        return ["langchain_opensearch_llm", "chat_models"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        """The key is serialized as a reference to ``OPENSEARCH_LLM_API_KEY``."""
        return {"api_key": API_KEY_ENV_VARS[0]}

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, **self._request_defaults()}

    def _get_invocation_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        return {"model": self.model_name, **super()._get_invocation_params(stop=stop, **kwargs)}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """LangSmith tracing parameters; ``ls_provider`` is ``opensearch_llm``."""
        params = {**self._request_defaults(), **kwargs}
        ls_params = LangSmithParams(
            ls_provider=PROVIDER,
            ls_model_name=str(kwargs.get("model") or self.model_name),
            ls_model_type="chat",
        )
        if params.get("temperature") is not None:
            ls_params["ls_temperature"] = params["temperature"]
        max_tokens = params.get("max_tokens") or params.get("max_completion_tokens")
        if max_tokens is not None:
            ls_params["ls_max_tokens"] = max_tokens
        ls_stop = stop or params.get("stop")
        if ls_stop:
            ls_params["ls_stop"] = [ls_stop] if isinstance(ls_stop, str) else list(ls_stop)
        return ls_params

    def _combine_llm_outputs(self, llm_outputs: list[dict[str, Any] | None]) -> dict[str, Any]:
        usage: dict[str, int] = {}
        for output in llm_outputs:
            for key, value in ((output or {}).get("token_usage") or {}).items():
                if isinstance(value, int):
                    usage[key] = usage.get(key, 0) + value
        return {"token_usage": usage, "model_name": self.model_name, "model_provider": PROVIDER}

    # ------------------------------------------------------------------ tokens

    def get_token_ids(self, text: str) -> list[int]:
        """Qwen's token ids of ``text``, offline (needs the ``[tokens]`` extra)."""
        if self.custom_get_token_ids is not None:
            return self.custom_get_token_ids(text)
        return qwen_encoder(self.model_name)(text)

    def get_num_tokens(self, text: str) -> int:
        """Qwen tokens of ``text`` (no message framing)."""
        return len(self.get_token_ids(text))

    def get_num_tokens_from_messages(
        self,
        messages: list[BaseMessage],
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool] | None = None,
    ) -> int:
        """Qwen tokens of a chat as the model reads it (ChatML framing included).

        Each message adds 5 tokens of framing and the answer's opening 3; ``tools`` count as
        their JSON; images, audio and video are not counted. The service's
        ``usage.prompt_tokens`` for plain text comes within a few tokens of this.
        """
        specs = [convert_to_openai_tool(tool) for tool in tools or ()]
        return count_message_tokens(messages_to_wire(messages), self.model_name, specs)

    # ------------------------------------------------------------------ clients

    def _client_options(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CHAT_OPTION_NAMES}

    def _sync_client(self) -> ChatClient:
        return self._clients.sync(
            lambda: ChatClient(http_client=self.http_client, **self._client_options())
        )

    def _async_client(self) -> AsyncChatClient:
        return self._clients.async_(
            lambda: AsyncChatClient(http_client=self.http_async_client, **self._client_options())
        )

    def close(self) -> None:
        """Close the sync connection pool (an injected ``http_client`` is left open)."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close this event loop's connection pool (an injected client is left open)."""
        await self._clients.aclose()

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle without live connections: injected httpx clients are dropped."""
        state = dict(super().__getstate__())
        fields = dict(state["__dict__"])
        fields["http_client"] = None
        fields["http_async_client"] = None
        state["__dict__"] = fields
        return state

    # ------------------------------------------------------------------ requests

    def _request_defaults(self) -> dict[str, Any]:
        """The request parameters set on the model (``model_kwargs`` included)."""
        params = {name: getattr(self, name) for name in _REQUEST_FIELDS}
        params["stop"] = self.stop or None
        params.update(self.model_kwargs)
        params["extra_body"] = self.extra_body  # last: its keys win, as in the core
        return {key: value for key, value in params.items() if value is not None}

    def _request(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: Mapping[str, Any],
        *,
        stream: bool,
    ) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
        """The model, wire messages and core keyword arguments of one call."""
        call = {k: v for k, v in kwargs.items() if k not in _LANGCHAIN_KWARGS}
        stream_usage = call.pop("stream_usage", None)
        model = _pop_model(call) or self.model_name
        _reject_client_fields(call)
        if stop is not None:
            call["stop"] = stop or None
        params = split_params(self._request_defaults(), call)
        if stream:
            _apply_stream_usage(params, self.stream_usage if stream_usage is None else stream_usage)
        return str(model), messages_to_wire(messages), params

    def _should_stream(
        self,
        *,
        async_api: bool,
        run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> bool:
        # n > 1: a stream would merge the choices into one message; generate them instead.
        n = kwargs.get("n") or self.n or 1
        if isinstance(n, int) and n > 1:
            return False
        return super()._should_stream(async_api=async_api, run_manager=run_manager, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        model, wire, params = self._request(messages, stop, kwargs, stream=False)
        with langchain_errors():
            completion = self._sync_client().create(model=model, messages=wire, **params)
        return completion_to_result(completion, model=model, audio_mime=audio_mime(params))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        model, wire, params = self._request(messages, stop, kwargs, stream=False)
        with langchain_errors():
            completion = await self._async_client().create(model=model, messages=wire, **params)
        return completion_to_result(completion, model=model, audio_mime=audio_mime(params))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        model, wire, params = self._request(messages, stop, kwargs, stream=True)
        converter = StreamConverter(audio_mime(params))
        with (
            langchain_errors(),
            self._sync_client().stream(model=model, messages=wire, **params) as stream,
        ):
            for chunk in stream:
                generation = converter.convert(chunk)
                if generation is not None:
                    if run_manager:
                        run_manager.on_llm_new_token(generation.text, chunk=generation)
                    yield generation
            last = converter.closing(stream.completion(), model=model, request_id=stream.request_id)
        if run_manager:
            run_manager.on_llm_new_token(last.text, chunk=last)
        yield last

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        model, wire, params = self._request(messages, stop, kwargs, stream=True)
        converter = StreamConverter(audio_mime(params))
        with langchain_errors():
            async with self._async_client().stream(model=model, messages=wire, **params) as stream:
                async for chunk in stream:
                    generation = converter.convert(chunk)
                    if generation is not None:
                        if run_manager:
                            await run_manager.on_llm_new_token(generation.text, chunk=generation)
                        yield generation
                last = converter.closing(
                    stream.completion(), model=model, request_id=stream.request_id
                )
        if run_manager:
            await run_manager.on_llm_new_token(last.text, chunk=last)
        yield last

    # ------------------------------------------------------------------ tools and structure

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | bool | dict[str, Any] | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (LangChain tools, functions, pydantic classes or OpenAI tool dicts).

        Args:
            tools: The tools the model may call.
            tool_choice: ``"auto"``, ``"none"``, ``"any"``/``"required"``/``True`` (some
                tool), a tool's name, or ``{"type": "function", "function": {"name": ...}}``.
                ``None``/``False``: not sent. Thinking models cannot be forced to call a tool.
            strict: Sent as each function's ``strict`` flag when not ``None``.
            parallel_tool_calls: ``False`` asks for one call at most.
            kwargs: Other parameters bound with the tools.
        """
        formatted = [convert_to_openai_tool(tool, strict=strict) for tool in tools]
        if tool_choice is not None and tool_choice is not False:
            names = [tool["function"]["name"] for tool in formatted]
            kwargs["tool_choice"] = wire_tool_choice(tool_choice, names)
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        return self.bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: StructuredMethod = "function_calling",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """A runnable that returns ``schema``-shaped output (a pydantic object or a dict).

        Args:
            schema: A pydantic class, ``TypedDict``, JSON schema or OpenAI function schema
                (optional with ``json_mode``).
            method: ``"function_calling"`` (default): a forced call of a tool made from the
                schema (thinking models cannot be forced, so they get ``tool_choice="auto"``).
                ``"json_mode"``: ``response_format={"type": "json_object"}``; say "JSON" and
                describe the fields in the prompt. ``"json_schema"``: the service's native
                JSON-schema output where the model profile supports it; for other models it
                falls back to ``"function_calling"`` with a warning.
            include_raw: Return ``{"raw", "parsed", "parsing_error"}`` instead of raising on
                output that does not parse.
            strict: Passed as the tool's or schema's ``strict`` flag when not ``None``.
            kwargs: Not supported; raises ``ValueError``.
        """
        if kwargs:
            raise ValueError(f"Received unsupported arguments {kwargs}")
        method = self._structured_method(method)
        if schema is None and method != "json_mode":
            raise ValueError(f"with_structured_output(method={method!r}) needs a schema.")
        trace = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
        builders = {
            "function_calling": self._structured_by_tool,
            "json_mode": self._structured_by_json_mode,
            "json_schema": self._structured_by_json_schema,
        }
        llm, parser = builders[method](schema, strict, trace)
        if not include_raw:
            return llm | parser
        parse = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        no_parse = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parse.with_fallbacks(
            [no_parse], exception_key="parsing_error"
        )

    def _structured_method(self, method: StructuredMethod) -> StructuredMethod:
        if method not in ("function_calling", "json_mode", "json_schema"):
            raise ValueError(
                f"Unrecognized method {method!r}: use 'function_calling', 'json_mode' "
                "or 'json_schema'."
            )
        if method == "json_schema" and not get_profile(self.model_name).json_schema:
            warnings.warn(
                f"{self.model_name} has no native JSON-schema output; "
                "with_structured_output falls back to method='function_calling'.",
                stacklevel=3,
            )
            return "function_calling"
        return method

    def _structured_by_tool(
        self, schema: Any, strict: bool | None, trace: dict[str, Any]
    ) -> tuple[Runnable[Any, Any], Runnable[Any, Any]]:
        name = convert_to_openai_tool(schema)["function"]["name"]
        thinking = sent_value(split_params(self._request_defaults()), "enable_thinking")
        settings = forced_tool_settings(self.model_name, thinking, name)
        llm = self.bind_tools(
            [schema],
            strict=strict,
            parallel_tool_calls=False,
            ls_structured_output_format=trace,
            **settings,
        )
        if settings["tool_choice"] == "auto":
            return llm, self._unforced_parser(schema, name)
        if _is_pydantic_class(schema):
            return llm, PydanticToolsParser(tools=[schema], first_tool_only=True)
        return llm, JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)

    def _unforced_parser(self, schema: Any, name: str) -> Runnable[Any, Any]:
        """A parser that raises when the model, not forced to, answered without the tool."""
        warnings.warn(
            f"{self.model_name} thinks, and the service rejects a forced tool call while a model "
            f"thinks: with_structured_output sends tool_choice='auto', and raises "
            f"OutputParserException when an answer does not call {name!r}.",
            stacklevel=4,
        )
        if _is_pydantic_class(schema):
            return RequiredPydanticToolsParser(
                tools=[schema], first_tool_only=True, model_name=self.model_name, tool_name=name
            )
        return RequiredJsonKeyToolsParser(
            key_name=name, first_tool_only=True, model_name=self.model_name, tool_name=name
        )

    def _structured_by_json_mode(
        self, schema: Any, strict: bool | None, trace: dict[str, Any]
    ) -> tuple[Runnable[Any, Any], Runnable[Any, Any]]:
        llm = self.bind(response_format={"type": "json_object"}, ls_structured_output_format=trace)
        return llm, _json_parser(schema)

    def _structured_by_json_schema(
        self, schema: Any, strict: bool | None, trace: dict[str, Any]
    ) -> tuple[Runnable[Any, Any], Runnable[Any, Any]]:
        function = convert_to_openai_function(schema)
        spec: dict[str, Any] = {"name": function["name"], "schema": function["parameters"]}
        if function.get("description"):
            spec["description"] = function["description"]
        if strict is not None:
            spec["strict"] = strict
        llm = self.bind(
            response_format={"type": "json_schema", "json_schema": spec},
            ls_structured_output_format=trace,
        )
        return llm, _json_parser(schema)


def _field_names_and_aliases(cls: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    for name, field in cls.model_fields.items():
        names.add(name)
        if field.alias:
            names.add(field.alias)
        if isinstance(field.validation_alias, AliasChoices):
            names.update(c for c in field.validation_alias.choices if isinstance(c, str))
    return names


def _pop_model(call: dict[str, Any]) -> Any:
    """The per-call model (``model`` or its alias ``model_name``), removed from ``call``."""
    model = call.pop("model", None)
    model_name = call.pop("model_name", None)
    return model or model_name


def _reject_client_fields(call: Mapping[str, Any]) -> None:
    fixed = sorted(_CLIENT_FIELDS & set(call))
    if fixed:
        raise ValueError(
            f"{fixed} configure the connection and cannot change per call; "
            "set them on ChatOpenSearchLLM(...) instead."
        )


def _apply_stream_usage(params: dict[str, Any], stream_usage: bool) -> None:
    # The core asks for usage by default; only an explicit opt-out changes stream_options.
    if params.get("stream_options") is None and not stream_usage:
        params["stream_options"] = {"include_usage": False}


def _is_pydantic_class(schema: Any) -> bool:
    return isinstance(schema, type) and is_basemodel_subclass(schema)


def _json_parser(schema: Any) -> Runnable[Any, Any]:
    if _is_pydantic_class(schema):
        return PydanticOutputParser(pydantic_object=schema)
    return JsonOutputParser()


def _register_for_load() -> None:
    """Let ``load(..., allowed_objects="all")`` revive the model, as it does upstream partners'.

    langchain-core >= 1.2.5 only revives classes listed in its own serialization mapping under
    ``allowed_objects="all"`` (partners are added there upstream); this adds our one class path.
    The default, ``allowed_objects="core"``, still refuses it; ``allowed_objects=
    [ChatOpenSearchLLM]`` works without this.
    """
    path = (*ChatOpenSearchLLM.get_lc_namespace(), ChatOpenSearchLLM.__name__)
    # The module, not the ``load`` function that ``langchain_core.load`` re-exports.
    langchain_load = importlib.import_module("langchain_core.load.load")
    mappings = getattr(langchain_load, "ALL_SERIALIZABLE_MAPPINGS", None)
    if isinstance(mappings, dict):
        mappings.setdefault(path, path)
    cache = getattr(langchain_load, "_default_class_paths_cache", None)
    if isinstance(cache, dict) and isinstance(cache.get("all"), set):
        cache["all"].add(path)


_register_for_load()
