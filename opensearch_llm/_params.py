"""The parameters an adapter sends: its model fields and a call's keywords, layered. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opensearch_llm._errors import RequestValidationError
from opensearch_llm._validate import CHAT_PARAMS


def split_params(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """The core's keyword arguments from parameter layers (model fields, then per-call ones).

    A later layer wins, and its ``None`` unsets the name; ``extra_body`` dicts are merged (a
    later key wins); names the core does not take (``CHAT_PARAMS``) go into ``extra_body``,
    so that a service field this package does not know yet can still be sent.

    Example: ``split_params({"top_k": 5, "x": 1}, {"extra_body": {"y": 2}})`` is
    ``{"top_k": 5, "extra_body": {"x": 1, "y": 2}}``.
    """
    params: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for layer in layers:
        for name, value in layer.items():
            if name == "extra_body":
                extra.update(_extra_body(value))
            elif name in CHAT_PARAMS:
                params[name] = value
            else:
                extra[name] = value
    params = {name: value for name, value in params.items() if value is not None}
    extra = {name: value for name, value in extra.items() if value is not None}
    if extra:
        params["extra_body"] = extra
    return params


def _extra_body(value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RequestValidationError("extra_body", value, "a JSON object (dict)")
    return value


def sent_value(params: Mapping[str, Any], name: str) -> Any:
    """The value of ``name`` the request body will carry (``extra_body`` wins, as in the core)."""
    extra = params.get("extra_body") or {}
    return extra[name] if name in extra else params.get(name)
