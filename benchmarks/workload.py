"""What every client is asked to do: the request, the stream length and the repetitions.

Light on purpose (standard library only): worker processes import it before the timed import of
the client they measure.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

MODEL = "qwen-plus"
API_KEY = "sk-bench"
SHORT_PROMPT = "Recommend one science fiction book"
#: Frames of a stream besides one per reply token: role, finish_reason and usage.
EXTRA_FRAMES = 3
#: Tokens the emulator puts before the echoed words: "You", "said:".
ECHO_PREFIX_TOKENS = 2
#: Connection pool of every httpx client (the core's default): keep-alive for 64 concurrent calls.
MAX_CONNECTIONS = 256
MAX_KEEPALIVE = 64


@dataclass(frozen=True)
class Workload:
    """Repetitions per worker process (each process measures one thing for one client)."""

    calls: int = 300
    call_warmup: int = 30
    streams: int = 15
    stream_warmup: int = 3
    stream_chunks: int = 500
    concurrency: int = 64
    async_calls: int = 960
    async_warmup: int = 128
    ceiling_seconds: float = 2.0
    ceiling_stream_connections: int = 4

    @property
    def words(self) -> int:
        """Words of the streamed prompt: the emulator echoes them one frame per token."""
        return self.stream_chunks - EXTRA_FRAMES - ECHO_PREFIX_TOKENS

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Workload:
        return cls(**json.loads(text))


FULL = Workload()
SMOKE = Workload(
    calls=5,
    call_warmup=1,
    streams=2,
    stream_warmup=1,
    stream_chunks=40,
    concurrency=4,
    async_calls=8,
    async_warmup=4,
    ceiling_seconds=0.2,
    ceiling_stream_connections=2,
)


@dataclass(frozen=True)
class TransportWorkload:
    """The transport suite's repetitions (``benchmarks.transport``): every loop is bounded twice,
    by a count and by seconds, whichever ends it first."""

    #: Concurrency levels of non-streamed calls (asyncio tasks sharing one client).
    levels: tuple[int, ...] = (64, 512, 2048)
    #: Calls per level at most, and seconds at most (what is still running then is cancelled).
    calls: int = 20_000
    call_seconds: float = 5.0
    #: Calls before each level's window, at min(level, pool size) tasks: the pool is open.
    call_warmup: int = 512
    #: Concurrent streams, streams at most and seconds at most.
    stream_concurrency: int = 256
    streams: int = 512
    stream_seconds: float = 8.0
    stream_chunks: int = 500
    #: Sequential streams of one fresh client through the TLS proxy, and its one-way delay.
    ttfc_streams: int = 5
    delay_ms: float = 25.0

    @property
    def words(self) -> int:
        return self.stream_chunks - EXTRA_FRAMES - ECHO_PREFIX_TOKENS

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TransportWorkload:
        fields = json.loads(text)
        return cls(**{**fields, "levels": tuple(fields["levels"])})


TRANSPORT_FULL = TransportWorkload()
TRANSPORT_SMOKE = TransportWorkload(
    levels=(4, 8, 16),
    calls=48,
    call_seconds=5.0,
    call_warmup=4,
    stream_concurrency=4,
    streams=8,
    stream_seconds=5.0,
    stream_chunks=40,
    ttfc_streams=2,
    delay_ms=5.0,
)


@dataclass(frozen=True)
class Target:
    """Where the clients send, and the two requests: a short call and a long stream."""

    base_url: str
    stream_words: int
    model: str = MODEL
    api_key: str = API_KEY
    short_prompt: str = SHORT_PROMPT
    long_prompt: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "long_prompt", " ".join(["word"] * self.stream_words))

    @property
    def url(self) -> str:
        return self.base_url + "/chat/completions"

    def messages(self, *, long: bool) -> list[dict[str, str]]:
        """The OpenAI wire messages of the short call or of the long stream."""
        return [{"role": "user", "content": self.long_prompt if long else self.short_prompt}]
