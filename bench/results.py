"""The shared benchmark record: ``bench/results.json``.

Top level, one flat object of named figures (each the median of its runs); under ``details``, each figure's
runs, their spread, its unit and the settings it ran with; under ``machine``, the CPUs and the load.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results.json"


def _update(change: Mapping[str, Any], path: Path) -> None:
    """Merge ``change`` into the results file (read-modify-write; created if missing; atomic replace)."""
    current: dict[str, Any] = {}
    if path.exists():
        text = path.read_text(encoding="utf-8").strip()
        if text:
            loaded = json.loads(text)
            if not isinstance(loaded, dict):
                raise ValueError(f"{path} must hold a JSON object")
            current = loaded
    for name, value in change.items():
        if isinstance(value, dict) and isinstance(current.get(name), dict):
            current[name] = {**current[name], **value}
        else:
            current[name] = value
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".results.", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(current, out, indent=2, sort_keys=True)
            out.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def record(figures: dict[str, float], path: Path = RESULTS) -> None:
    """Merge single-measurement ``figures`` into the results file."""
    _update({name: round(float(value), 3) for name, value in figures.items()}, path)


def summary(runs: Sequence[float]) -> dict[str, Any]:
    """The median of ``runs``, the runs, and their spread: (max - min) / median, in percent."""
    median = statistics.median(runs)
    spread = (max(runs) - min(runs)) / median * 100 if median else 0.0
    return {"median": round(median, 3), "runs": [round(r, 3) for r in runs], "spread_pct": round(spread, 1)}


def record_runs(
    figures: Mapping[str, Sequence[float]],
    settings: Mapping[str, Any],
    unit: Mapping[str, str] | None = None,
    path: Path = RESULTS,
) -> dict[str, dict[str, Any]]:
    """Record each figure as the median of its runs, its runs, spread, unit and ``settings`` beside it."""
    details = {
        name: {**summary(runs), "settings": dict(settings), **({"unit": unit[name]} if unit and name in unit else {})}
        for name, runs in figures.items()
    }
    _update({**{name: detail["median"] for name, detail in details.items()}, "details": details}, path)
    return details


def record_section(name: str, value: Any, path: Path = RESULTS) -> None:
    """A named section of structured figures (the scale-out tables, peak memory, cold starts)."""
    _update({name: value}, path)


def percentile(samples: list[float], pct: float) -> float:
    """The ``pct``-th percentile of ``samples`` (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]
