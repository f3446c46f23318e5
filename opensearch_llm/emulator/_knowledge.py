"""knowledge-llm: question + content summarised, or a direct prompt (docs/service-facts.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opensearch_llm.emulator._errors import ApiError, invalid
from opensearch_llm.emulator._response import dumps
from opensearch_llm.emulator._text import split_pieces

ANSWER_PREFIX = "Answer to: "
SOURCES_SEPARATOR = " | Sources: "
#: With ``csi_level: "loose"``, input containing this marker is blocked by moderation.
RESTRICTED_MARKER = "[restricted]"
CSI_LEVELS = ("none", "loose")


@dataclass(frozen=True)
class KnowledgeRequest:
    """A validated knowledge-llm request."""

    question: str
    content: tuple[str, ...]
    prompt: str | None
    stream: bool
    csi_level: str

    def answer(self) -> str:
        """``"Answer to: <prompt>"``, or ``"Answer to: <question> | Sources: <c1> | <c2>"``."""
        if self.prompt:
            return ANSWER_PREFIX + self.prompt
        if not self.content:
            return ANSWER_PREFIX + self.question
        return ANSWER_PREFIX + self.question + SOURCES_SEPARATOR + " | ".join(self.content)

    def blocked(self) -> bool:
        """Whether ``csi_level: loose`` moderation blocks this request."""
        text = " ".join((self.prompt or "", self.question, *self.content)).lower()
        return self.csi_level == "loose" and RESTRICTED_MARKER in text


def parse_knowledge_request(body: Any) -> KnowledgeRequest | ApiError:
    """The validated request, or the error the service answers with."""
    if not isinstance(body, dict):
        return invalid(None, "The request body is not a JSON object.")
    prompt, question, content = body.get("prompt"), body.get("question"), body.get("content", [])
    if prompt is not None and not isinstance(prompt, str):
        return invalid("prompt", "prompt must be a string")
    if not prompt and not (isinstance(question, str) and question):
        return invalid("question", "question (or prompt) is required and must not be empty")
    if not isinstance(content, list) or not all(isinstance(item, str) for item in content):
        return invalid("content", "content must be a list of strings")
    options = body.get("options") or {}
    if not isinstance(options, dict) or not isinstance(options.get("stream", False), bool):
        return invalid("options.stream", "options must be an object and options.stream a boolean")
    csi_level = body.get("csi_level", "none")
    if csi_level not in CSI_LEVELS:
        return invalid("csi_level", "csi_level must be none or loose")
    return KnowledgeRequest(
        question=question if isinstance(question, str) else "",
        content=tuple(content),
        prompt=prompt or None,
        stream=bool(options.get("stream")),
        csi_level=csi_level,
    )


def blocked_error() -> ApiError:
    """The moderation error of a blocked request (reported under HTTP 200 in ``errors[]``)."""
    return ApiError(
        200, "data_inspection_failed", "The content was blocked by moderation (csi_level=loose)."
    )


def knowledge_body(request_id: str, answer: str, latency: float) -> dict[str, Any]:
    """The documented response object with one text answer."""
    return {
        "request_id": request_id,
        "latency": latency,
        "result": {"data": [{"answer": answer, "type": "text"}]},
        "errors": [],
    }


def knowledge_frames(request_id: str, answer: str, latency: float, cumulative: bool) -> list[bytes]:
    """SSE frames: one per word of the answer (the whole answer so far when ``cumulative``)."""
    frames = []
    sent = ""
    for piece in split_pieces(answer):
        sent += piece
        body = knowledge_body(request_id, sent if cumulative else piece, latency)
        frames.append(b"data: " + dumps(body) + b"\n\n")
    return frames
