"""The sync and async clients and streams offer the same public API, parameter for parameter.

As the Anthropic SDK checks its clients: every public method (and property) of a sync class has
an async twin of the same name (``close`` -> ``aclose``, ``__enter__`` -> ``__aenter__``, ...)
whose parameters have the same names, kinds, defaults and annotations (compared as strings, the
sync types in ``ASYNC_TYPES`` read as their async twins), and the same return annotation.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from opensearch_llm import (
    AsyncChatClient,
    AsyncChatStream,
    AsyncEmbeddingClient,
    AsyncKnowledgeClient,
    AsyncKnowledgeStream,
    AsyncRerankClient,
    ChatClient,
    ChatStream,
    EmbeddingClient,
    KnowledgeClient,
    KnowledgeStream,
    RerankClient,
)

PAIRS = [
    (ChatClient, AsyncChatClient),
    (KnowledgeClient, AsyncKnowledgeClient),
    (EmbeddingClient, AsyncEmbeddingClient),
    (RerankClient, AsyncRerankClient),
    (ChatStream, AsyncChatStream),
    (KnowledgeStream, AsyncKnowledgeStream),
]

#: Sync names whose async twin is named otherwise.
ASYNC_NAMES = {
    "close": "aclose",
    "__enter__": "__aenter__",
    "__exit__": "__aexit__",
    "__iter__": "__aiter__",
    "__next__": "__anext__",
}
#: The dunder methods that are public: the constructor and the protocols above.
PUBLIC_DUNDERS = {"__init__", *ASYNC_NAMES, *ASYNC_NAMES.values()}

#: The only way an async annotation may differ: a sync type (a whole name) becomes its twin.
ASYNC_TYPES = {
    "httpx.Client": "httpx.AsyncClient",
    "Iterator": "AsyncIterator",
    "Callable[[], OpenStream]": "Callable[[], Coroutine[Any, Any, OpenStream]]",
    "ChatStream": "AsyncChatStream",
    "KnowledgeStream": "AsyncKnowledgeStream",
}
_SYNC_TYPE = re.compile(
    r"(?<![\w.])({})(?!\w)".format("|".join(map(re.escape, sorted(ASYNC_TYPES, key=len)[::-1])))
)

Parameter = tuple[str, str, str, str]


def public_names(cls: type) -> set[str]:
    """The public methods and properties of ``cls``."""
    return {name for name in dir(cls) if not name.startswith("_") or name in PUBLIC_DUNDERS}


def _text(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def parameters(cls: type, name: str) -> list[Parameter]:
    """Each parameter of ``cls.<name>`` as (name, kind, default, annotation), then the return."""
    member = inspect.getattr_static(cls, name)
    function = member.fget if isinstance(member, property) else getattr(cls, name)
    if not callable(function):
        return [("<attribute>", type(member).__name__, "", "")]
    signature = inspect.signature(function)
    described = [
        (p.name, p.kind.name, repr(p.default), _text(p.annotation))
        for p in signature.parameters.values()
    ]
    return [*described, ("<return>", "", "", _text(signature.return_annotation))]


def as_async(described: list[Parameter]) -> list[Parameter]:
    """A sync method's parameters as its async twin must have them."""
    return [
        (name, kind, default, _SYNC_TYPE.sub(lambda m: ASYNC_TYPES[m[1]], annotation))
        for name, kind, default, annotation in described
    ]


def differences(sync_cls: type, async_cls: type) -> dict[str, Any]:
    """Each public name whose async twin is missing or has other parameters."""
    found: dict[str, Any] = {}
    async_names = public_names(async_cls)
    for name in sorted(public_names(sync_cls)):
        twin = ASYNC_NAMES.get(name, name)
        if twin not in async_names:
            found[name] = f"no {async_cls.__name__}.{twin}"
            continue
        expected, actual = as_async(parameters(sync_cls, name)), parameters(async_cls, twin)
        if expected != actual:
            found[name] = {"expected": expected, "actual": actual}
    return found


@pytest.mark.parametrize(("sync_cls", "async_cls"), PAIRS, ids=lambda cls: cls.__name__)
def test_every_sync_method_has_an_async_twin_with_the_same_parameters(
    sync_cls: type, async_cls: type
) -> None:
    assert differences(sync_cls, async_cls) == {}


@pytest.mark.parametrize(("sync_cls", "async_cls"), PAIRS, ids=lambda cls: cls.__name__)
def test_the_async_class_has_nothing_the_sync_one_lacks(sync_cls: type, async_cls: type) -> None:
    twins = {ASYNC_NAMES.get(name, name) for name in public_names(sync_cls)}
    assert public_names(async_cls) - twins == set()


class _Sync:
    def call(self, text: str, *, limit: int = 3) -> Iterator[str]:
        raise NotImplementedError

    def close(self) -> None:
        """Release."""


class _Async:
    def call(self, text: str, *, limit: int = 4) -> AsyncIterator[str]:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release."""


def test_a_different_default_is_found_and_async_types_are_not_differences() -> None:
    found = differences(_Sync, _Async)
    assert list(found) == ["call"]
    assert found["call"]["expected"][2] == ("limit", "KEYWORD_ONLY", "3", "int")
    assert found["call"]["actual"][2] == ("limit", "KEYWORD_ONLY", "4", "int")
    assert found["call"]["expected"][-1] == found["call"]["actual"][-1]  # Iterator -> AsyncIterator
