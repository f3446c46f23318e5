"""The whole thinking policy: when a model thinks, and what that changes in a request.

A model never thinks, always thinks, or thinks when ``enable_thinking`` says so (hybrid; each
has a default: ``_profiles``). The service refuses a forced ``tool_choice`` while the model
thinks, and hybrid open-source models refuse a non-streamed call unless thinking is off
(docs/service-facts.md, "Thinking models"). The core applies these rules to every request
(``apply_thinking_policy``); the adapters ask for a forced tool call through
``forced_tool_settings``.
"""

from __future__ import annotations

from typing import Any

from opensearch_llm._errors import RequestValidationError
from opensearch_llm._profiles import ModelProfile, get_profile
from opensearch_llm._validate import is_forced_tool_choice


def thinking_enabled(profile: ModelProfile, enable_thinking: bool | None) -> bool:
    """Whether the model will think, given what the caller sent for ``enable_thinking``."""
    if profile.thinking == "only":
        return True
    if profile.thinking == "none":
        return False
    return profile.thinking_default if enable_thinking is None else enable_thinking


def apply_thinking_policy(
    model: str, profile: ModelProfile, body: dict[str, Any], *, stream: bool, partial: bool = False
) -> bool:
    """Whether the request thinks; switches thinking off (or on) in ``body`` where needed.

    The code interpreter works only while a hybrid model thinks, prefix completion
    (``partial``) only while it does not (docs/service-facts.md, "Qwen extras", "Partial
    mode"): ``enable_thinking`` is sent accordingly when the caller did not choose. Raises
    ``RequestValidationError`` for a forced ``tool_choice`` while the model thinks, and for
    those two where the model's thinking mode cannot allow them.
    """
    if body.get("enable_code_interpreter"):
        _switch_thinking(model, profile, body, True, "enable_code_interpreter")
    if partial:
        _switch_thinking(model, profile, body, False, "messages[-1].partial")
    if not stream and profile.thinking == "hybrid" and profile.thinking_default:
        # Hybrid open-source models reject a non-streamed call unless thinking is switched off.
        body.setdefault("enable_thinking", False)
    thinking = thinking_enabled(profile, body.get("enable_thinking"))
    if thinking and is_forced_tool_choice(body.get("tool_choice")):
        raise RequestValidationError(
            "tool_choice",
            body["tool_choice"],
            "'auto' or 'none' while the model thinks",
            f"{model} is thinking; send enable_thinking=False to force a tool call"
            if profile.thinking == "hybrid"
            else f"{model} always thinks; choose a non-thinking model to force a tool call",
        )
    return thinking


def _switch_thinking(
    model: str, profile: ModelProfile, body: dict[str, Any], wanted: bool, field: str
) -> None:
    """Send ``enable_thinking: wanted`` for ``field``, unless the model or caller rule it out."""
    if not profile.known:
        return  # the service decides for models the table does not know
    fixed = {"only": True, "none": False}.get(profile.thinking)
    chosen = body.get("enable_thinking")
    if fixed is None and chosen is None:
        body["enable_thinking"] = wanted
        return
    if (fixed if fixed is not None else chosen) == wanted:
        return
    if fixed is not None:
        reason = f"{model} {'always' if fixed else 'never'} thinks"
    else:
        reason = f"The call sets enable_thinking={chosen}"
    needs = "thinking" if wanted else "thinking switched off"
    raise RequestValidationError(
        field,
        True,
        f"a model and settings with {needs} (hybrid models: leave enable_thinking unset)",
        reason + ".",
    )


def forced_tool_settings(model: str, enable_thinking: bool | None, choice: Any) -> dict[str, Any]:
    """The parameters that make ``model`` call a tool (``choice``: ``required`` or a function).

    The service rejects a forced ``tool_choice`` while the model thinks, so: a model that does
    not think gets ``choice``; a hybrid model that would think by default (``enable_thinking``
    unset) also gets ``enable_thinking: false``; a model that thinks anyway gets
    ``tool_choice: "auto"`` (it may then answer without calling the tool).
    ``enable_thinking`` is the value the request sends (see ``sent_value``).
    """
    profile = get_profile(model)
    if not thinking_enabled(profile, enable_thinking):
        return {"tool_choice": choice}
    if profile.thinking == "hybrid" and enable_thinking is None:
        return {"tool_choice": choice, "enable_thinking": False}
    return {"tool_choice": "auto"}
