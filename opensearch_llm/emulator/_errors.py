"""Service errors and the shapes each dialect gives them (docs/service-facts.md, "Errors")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error"}


@dataclass(frozen=True)
class ApiError:
    """An error the emulated service reports: HTTP status, ``code``, message and ``param``."""

    status: int
    code: str
    message: str
    param: str | None = None
    type: str | None = None

    @property
    def error_type(self) -> str:
        """The OpenAI ``type`` field: given, else derived from the status."""
        return self.type or _TYPES.get(self.status, self.code)


def invalid(param: str | None, message: str) -> ApiError:
    """A 400 ``invalid_parameter_error`` about ``param``."""
    return ApiError(400, "invalid_parameter_error", message, param)


def openai_error(error: ApiError, request_id: str) -> dict[str, Any]:
    """``{"error": {message, type, param, code}, "request_id"}`` (compatible mode)."""
    return {
        "error": {
            "message": error.message,
            "type": error.error_type,
            "param": error.param,
            "code": error.code,
        },
        "request_id": request_id,
    }


def envelope_error(error: ApiError, request_id: str) -> dict[str, Any]:
    """``{"success": false, "code", "message", "data": null}`` (AI gateway)."""
    return {
        "success": False,
        "code": error.code,
        "message": error.message,
        "data": None,
        "request_id": request_id,
    }


def knowledge_error(error: ApiError, request_id: str) -> dict[str, Any]:
    """knowledge-llm's ``{request_id, latency, status: FAIL, result, errors: [...]}``."""
    return {
        "request_id": request_id,
        "latency": 0.0,
        "status": "FAIL",
        "result": {"data": []},
        "errors": [{"code": error.code, "message": error.message}],
    }


def flat_error(error: ApiError, request_id: str) -> dict[str, Any]:
    """``{"code", "message", "request_id"}`` (DashScope native style)."""
    return {"code": error.code, "message": error.message, "request_id": request_id}


#: Renders an error as the JSON object a dialect sends.
ErrorStyle = Callable[[ApiError, str], dict[str, Any]]
