r"""A local emulator of the service: compatible mode, the AI gateway and knowledge-llm.

One ASGI 3 application (``Emulator().app``) serves the three dialects of the service
(``docs/service-facts.md``):

- ``POST /compatible-mode/v1/chat/completions``: OpenAI ``chat.completion`` bodies and SSE chunks.
- ``POST /api/v1/chat/completions`` (AI gateway): the same, every body and every stream frame
  wrapped as ``{"success": true, "code": "200", "message": "successful", "data": ...}``.
- ``POST /v3/openapi/apps/{app}/actions/knowledge-llm``: ``{request_id, latency,
  result: {data: [{answer, type: "text"}]}, errors: []}``; any ``app`` name is accepted.

and, next to them, embeddings and rerank (Model Studio's and the AI Search platform's; see
"Embeddings and rerank" below), and the files and Batch API (``/compatible-mode/v1/files``,
``/batches``: upload, create, poll, cancel, download; the lines run through the chat logic,
``"model": "fault/<name>"`` fails a line, ``batch_store(emu).completion_delay`` (default 1 s)
is how long a batch runs; see ``_batches``).

Use it in-process (``emu.transport()``, ``emu.async_transport()``: httpx transports, no sockets;
an async client given one sends through httpx, not aiohttp) or on a real socket (``with
serve(emu) as server:``, uvicorn in a background thread, for every client and transport)::

    emu = Emulator()
    client = httpx.Client(transport=emu.transport(), base_url="http://emulator.local")
    with serve(emu) as server:
        openai.OpenAI(api_key="sk-test", base_url=server.compatible_base_url)

Authentication: ``Authorization: Bearer <key>``; with ``Emulator(api_key=None)`` any non-empty key
works, else only that one. Otherwise 401 ``invalid_api_key``.

Replies (deterministic; a *token* is a whitespace-separated word)
------------------------------------------------------------------
- Content: ``"You said: " + <text of the last user message>`` (list contents: their text parts
  joined by spaces). Choice ``i >= 1`` of ``n`` appends ``" (choice {i+1})"``.
- After ``tool`` messages that end the conversation: ``"Tool results: <name> returned <content>"``
  for each, joined by ``"; "`` (the name comes from ``name`` or the matching ``tool_call_id``).
- ``stop``: the content is cut before the earliest stop string (``finish_reason: "stop"``); then
  ``max_tokens`` / ``max_completion_tokens`` keep the first N tokens (``finish_reason: "length"``).
- ``response_format``: ``json_schema`` answers a value of the schema, filled from the prompt
  (see "Tools" below); ``json_object`` answers, first match wins: a value of the JSON schema
  written in the messages (the latest one, filled from the last user text without it); an object
  of the identifiers the last user text quotes when it speaks of keys, fields or properties
  (``'setup' and 'punchline' keys``: string values, filled likewise); else ``{"reply": <content>}``.
- Thinking (when ``opensearch_llm._profiles`` says the model thinks for this ``enable_thinking``):
  ``reasoning_content`` is ``"Let me think about: " + <last user text>``, cut to
  ``thinking_budget`` tokens; streamed before the content; counted in
  ``usage.completion_tokens_details.reasoning_tokens``.
- Usage: ``prompt_tokens`` = tokens of every message's text; ``completion_tokens`` = reasoning +
  content + tool calls (``"<name> <arguments>"``) over all choices; ``total_tokens`` = the sum.
- Ids: ``x-request-id`` header on every response and ``request_id`` in every error body;
  completion id ``chatcmpl-<request id>``; request ids restart with ``emu.reset()``.
- Streams: ``data: {...}\n\n`` frames per choice: ``{"role": "assistant", "content": ""}``, one
  frame per reasoning token, one per content token (each token with its leading whitespace), tool
  call fragments, a frame with ``finish_reason`` (delta ``{"content": ""}``); then, when
  ``stream_options.include_usage`` is true, a usage-only chunk with ``choices: []``; then
  ``data: [DONE]``.

Tools
-----
With ``tools`` offered, the reply is tool calls (``finish_reason: "tool_calls"``, content ``""``)
when ``tool_choice`` names a function (that one), or is ``required`` (the tools the last user
message asks for, else the first tool), or is ``auto``/absent and the last user message asks for
tools: one call per tool asked for, in order of first mention (parallel calls), only the first
when ``parallel_tool_calls`` is false. A message asks for a tool that it names as a word
(``get_weather``); when it names none, for each tool whose name has a word of 3 or more letters,
other than generic ones (get, fetch, search, tool, ...: ``_prompt.GENERIC_WORDS``), that occurs
in it as a word, any case, plural too ("What is the weather in Paris?" asks for ``get_weather``).
``tool_choice: "none"`` never calls; after tool results (the conversation ends with ``tool``
messages) ``auto`` answers in text.
Arguments (and ``json_schema`` values) take what the last user message gives, per top-level
property in schema order, the first value that validates against the property: an argument of a
literal call of the tool (``magic_function(3)``, ``get_weather("Paris", days=3)``: positional
ones in property order); a ``key=value`` or ``key: value`` pair (``city=Hangzhou``); for an
``enum``, an option that occurs as a word; for a string without ``format``, the next quoted text
(``'...'``, ``"..."``, backticks, curly quotes, corner brackets), then the next capitalised
phrase after for, in, at, near, from, to, named, called or about ("weather in New York" gives
``"New York"``); for a number or integer, the next number. Each quoted text, phrase and number
serves one property. Every other value is a sample of the schema: strings ``"sample
<property>"`` (or a value of their ``format``), integers 1 and numbers 1.5 moved into their
bounds, booleans true, first ``enum``/``anyOf``/``oneOf`` option, ``minItems`` (at least one)
array items, local ``$ref``\s followed. Streamed like the service: the first fragment of a call
has ``id``, ``type`` and ``function.name`` (arguments ``""``); later ones ``"id": ""`` and
``function: {"arguments": <piece>}``; arguments come in 3 pieces; calls differ by ``index``.

Validation (400 ``invalid_parameter_error`` with ``param``, unless said otherwise)
----------------------------------------------------------------------------------
Roles system/user/assistant/tool, system only first; non-empty content (an assistant message
with ``tool_calls`` may be empty); ``tool`` messages need ``tool_call_id``; temperature [0, 2),
top_p (0, 1], presence/frequency penalty [-2, 2], n 1-4, max_tokens and max_completion_tokens
1..the model's ``max_output``, seed >= 0, thinking_budget >= 1; stop a string or strings; tools as
OpenAI function tools (and only for models whose profile has ``tools``); ``tool_choice`` auto,
none, required or a function among the tools; ``json_object`` needs the word "json" in the
messages. Unknown model: 404 ``model_not_found`` (known: every ``PROFILES`` name, their dated,
``-latest`` and ``-us`` variants, and ``fault/...``). Thinking rules: a ``stream_only`` model, or
a model thinking for this request (thinking-only models, hybrid ones whose ``thinking_default``
is on unless ``enable_thinking: false``, any with ``enable_thinking: true``), rejects a
non-streamed call; thinking with ``tool_choice`` ``required`` or a named function is rejected.
Unknown paths: 404 ``not_found``; other methods than POST: 405.
Error bodies: compatible mode ``{"error": {message, type, param, code}, "request_id"}``; gateway
``{"success": false, "code", "message", "data": null, "request_id"}`` with the same HTTP status;
knowledge-llm ``{request_id, latency, status: "FAIL", result: {data: []}, errors: [{code,
message}]}``.

knowledge-llm
-------------
``question`` (required unless ``prompt``), ``content`` (list of strings), ``prompt`` (overrides
both), ``options.stream``, ``csi_level`` (none | loose), ``model`` (any). Answer:
``"Answer to: <prompt>"``, or ``"Answer to: <question>"`` + ``" | Sources: <c1> | <c2>..."`` when
there is content. Streamed: one SSE ``data:`` frame per answer token, each a full response object
whose answer is that piece (no ``[DONE]``; the stream ends with the body). With ``csi_level:
"loose"``, input containing ``[restricted]`` is blocked: HTTP 200, ``status: "FAIL"``,
``errors: [{"code": "data_inspection_failed", ...}]``.

Embeddings and rerank
---------------------
Paths, limits and bodies are the service's (``docs/service-facts.md``, "Embeddings and rerank";
the limits are read from the client's model tables):

- ``POST /compatible-mode/v1/embeddings`` (``text-embedding-v1`` ... ``-v4``; also the dense
  ``ops-*`` services, as OpenSearch's compatible mode serves them, 32 per request): ``input`` a
  string or strings, at most the model's count (11 for v4: 400 ``InvalidParameter`` "batch size
  is invalid, it should not be larger than 10"), none blank or over the token limit, no token
  arrays; ``dimensions`` one of the model's (default 1024; v1/v2 1536); ``encoding_format``
  ``float`` only. OpenAI-shaped answer plus ``id``; errors ``{"error": {...}, "id", "request_id"}``.
- ``POST /compatible-api/v1/reranks`` (``qwen3-rerank``) and ``POST
  /api/v1/services/rerank/text-rerank/text-rerank`` (``gte-rerank-v2``, ``qwen3-vl-rerank``):
  ``results[]`` / ``output.results[]`` of ``{index, relevance_score}`` (``document.text`` with
  ``return_documents``), best first, ``top_n`` of them; at most 500 documents (VL: 100) and the
  model's tokens per request (query words x documents + document words); flat ``{code,
  message, request_id}`` errors.
- ``POST /v3/openapi/workspaces/{workspace}/{text-embedding|text-sparse-embedding|ranker}/{id}``
  (the AI Search platform's ``ops-*`` services; any workspace): ``input`` (at most 32),
  ``input_type`` (``query``/``document``, else 400), ``return_token``; ``query`` and ``docs``
  for the ranker. ``{request_id, latency, usage, result}`` answers; errors ``{request_id,
  latency, code, message}``; an unknown service id is 400 ``ServiceIdNotExist``.

Vectors are deterministic and follow shared words, so offline retrieval finds the passage a query
is about. A text's *words*: lower-cased runs of letters and digits (each CJK character one),
without English stop words ("what", "is", "the", ...), a plural ``s`` dropped. A dense vector
starts from a fixed small background and adds ``±1 / (1 + i/8)`` for its ``i``-th word at 4
coordinates hashed from the word (earlier words weigh more: a text is usually about what it
names first), then is scaled to length 1. Sparse vectors: one ``{token_id, weight}`` per distinct
word (``token_id`` hashed, weight the sum of its ``1 / (1 + i/8)``; ``token`` with
``return_token``). Rerank ``relevance_score``: ``0.9 x`` the share of the query's words found in
the document ``+ 0.1 / (1 + position of the first one found)``, in [0, 1]; the ranker's score is
``6 x relevance_score - 3`` (not bounded to [0, 1], as the platform's). Usage counts words.

Faults
------
Chosen per request, first match wins:

1. header ``X-Emulator-Fault: <name>``, parameters in ``X-Emulator-Fault-After: <frames>``
   (default 2), ``X-Emulator-Delay: <seconds>``, ``X-Emulator-Retry-After: <seconds>``
   (default 1), ``X-Emulator-Status: <code>`` (overrides an error fault's status);
2. model ``fault/<name>``, parameters as a query: ``fault/stall?after=3&delay=0.5`` (for clients
   that cannot add headers; the request is otherwise answered as a model without thinking);
3. ``emu.script_faults(["503", Fault("reset-mid-stream", after=3), None])``: one per request, in
   order (``None`` = no fault), e.g. "fail twice, then succeed";
4. ``Emulator(fault_rate={"503": 0.1}, seed=7)``: random faults with these probabilities.

Names (``_`` and ``-`` are the same): ``429`` (with ``Retry-After``), ``500``, ``502``,
``503``, ``504``, ``insufficient-quota`` (429), ``data-inspection-failed`` (400),
``flat-error`` (400 ``{"code", "message", "request_id"}``), ``html`` (502 text/html page),
``error-200``/``success-false``/``knowledge-errors`` (the dialect's error body under HTTP 200:
``{"error": ...}``, ``success: false``, ``errors[]`` with ``status: FAIL``), ``reset`` (the
connection is reset before any response), ``reset-mid-stream`` (after ``after`` frames, or half
a non-streamed body), ``stall`` (likewise, then nothing for ``delay`` seconds, default 10, then a
reset), ``error-frame`` (after ``after`` frames a ``data: {"error": ...}`` frame in the dialect's
error shape ends the stream; non-streamed: as ``error-200``), ``no-done`` (no ``data: [DONE]``),
``slow-first-byte`` (the head waits ``delay`` seconds, default 1), ``trickle`` (every
frame, or every byte of a non-streamed body, ``delay`` seconds after the one before, default
0.1: a server that never stops sending yet never finishes), ``malformed-json`` (a broken
frame after ``after`` frames; non-streamed: half a JSON body), ``content-filter`` (half the
content, ``finish_reason: "content_filter"``; knowledge-llm: blocked), ``knowledge-cumulative``
(each knowledge-llm frame carries the whole answer so far), ``sse-no-space`` (``data:{...}``),
``echo-auth`` (a 401 whose message quotes the ``Authorization`` header; streamed: an error frame
that quotes it after ``after`` frames), ``input-too-long`` (DashScope's flat ``InvalidParameter``
"Range of input length" error under HTTP 200), ``redirect`` (307 to ``https://moved.example.com/``),
``keep-alive-frames`` (a ``data: {}`` frame before every frame of a stream).
Error faults answer before authentication and validation; faults that bend a reply apply only to
a successful one. In-process transports honour delays with real sleeps, raise ``httpx.ReadTimeout``
when the time without bytes exceeds the request's read timeout, and ``httpx.ReadError`` on a reset.

Request log: ``emu.requests`` (``RecordedRequest(method, path, headers, json, body)``, the
``authorization`` header redacted), ``emu.request_count``, ``emu.connection_count`` (TCP
connections a served emulator accepted: how well clients reuse them), ``emu.reset()``.
"""

from opensearch_llm.emulator._batches import BatchStore, batch_store
from opensearch_llm.emulator._core import Emulator, RecordedRequest
from opensearch_llm.emulator._faults import FAULTS, Fault, FaultError
from opensearch_llm.emulator._server import EmulatorServer, serve

FAULT_NAMES: tuple[str, ...] = tuple(FAULTS)

__all__ = [
    "FAULT_NAMES",
    "BatchStore",
    "Emulator",
    "EmulatorServer",
    "Fault",
    "FaultError",
    "RecordedRequest",
    "batch_store",
    "serve",
]
