"""Overhead benchmarks: our clients against raw httpx, the openai SDK, ChatOpenAI and OpenAILike.

Run ``python -m benchmarks.run`` (see ``benchmarks/README.md``). Nothing here is imported by the
packages, and no module of this package imports a client library at import time: each worker
process imports exactly the client it measures, so its cold import is measured from scratch.
"""
