"""The development stack: real services on free ports for the tests and the benchmarks (``services.py``),
and a whole stack's environment, connections and dead-letter queue (``stack.py``)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository
