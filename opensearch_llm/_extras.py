"""What to install for an optional extra: one place for the advice every missing-extra error gives.

The distribution is not on the package index yet, so the advice names the two ways that work:
an editable install from a clone, or a built wheel (``python -m build``), each with the extra.
"""

from __future__ import annotations

from opensearch_llm._version import __version__

DISTRIBUTION = "opensearch-llm"


def install_hint(extra: str) -> str:
    """How to install ``extra``: from a clone of the repository, or from a built wheel."""
    wheel = f"dist/opensearch_llm-{__version__}-py3-none-any.whl"
    return (
        f"install {DISTRIBUTION} with its [{extra}] extra: pip install -e '.[{extra}]' in a clone "
        f"of the repository, or pip install '{wheel}[{extra}]' from a built wheel"
    )


def missing_extra(what: str, extra: str, error: ModuleNotFoundError) -> ModuleNotFoundError:
    """The error for ``what`` needing ``extra``, whose module ``error.name`` is not installed."""
    message = f"{what} needs {error.name}, which is not installed; {install_hint(extra)}."
    return ModuleNotFoundError(message, name=error.name)
