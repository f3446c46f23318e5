"""What every ``opensearch-llm`` command shares: exit statuses, usage errors, and who answers.

The built-in emulator answers only when nothing is configured (no key, no endpoint named); an
endpoint named without a key is a usage error, never an emulator answer.
"""

from __future__ import annotations

import argparse
import os
from typing import TextIO

from opensearch_llm._config import API_KEY_ENV_VARS, BASE_URL_ENV_VAR

EMULATOR_ORIGIN = "http://emulator.local"
EMULATOR_BASE_URL = f"{EMULATOR_ORIGIN}/compatible-mode/v1"
EMULATOR_KEY = "sk-emulator"
DEFAULT_APP = "default"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """The command or its configuration is wrong; the message says what to change (exit 2)."""


def has_api_key() -> bool:
    """Whether a key is configured in the environment."""
    return any(os.environ.get(name) for name in API_KEY_ENV_VARS)


SET_KEY = "set " + " or ".join(API_KEY_ENV_VARS)


def say_offline(err: TextIO, missing: str) -> None:
    print(f"No {missing} set: answering from the built-in emulator, offline.", file=err)


def offline(args: argparse.Namespace, err: TextIO) -> bool:
    """Whether the emulator answers (and stderr says so): no key and no endpoint named.

    An endpoint named without a key is a ``UsageError``: never an emulator answer.
    """
    if has_api_key():
        return False
    named = named_endpoint(args)
    if named:
        raise UsageError(f"no API key for {named}: {SET_KEY}")
    say_offline(err, "API key (" + " or ".join(API_KEY_ENV_VARS) + ") and no endpoint")
    return True


def named_endpoint(args: argparse.Namespace) -> str | None:
    """The chat endpoint the user named, described; None when they named none."""
    if args.base_url:
        return str(args.base_url)
    if args.region:
        return f"the {args.region} region"
    from_env = os.environ.get(BASE_URL_ENV_VAR)
    return f"{from_env} ({BASE_URL_ENV_VAR})" if from_env else None
