"""``bench/results.json`` as the Markdown tables of docs/benchmarks.md (``python -m bench.summary``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.results import RESULTS

GOALS = {
    "lookup_vs_bare_server": "≥ 0.8",
    "lookup_memcached_vs_bare_server": "≥ 0.6",
    "ingest_vs_postgres": "≥ 0.7",
    "ingest_orders_per_s": "≥ 10,000",
    "coldstart_get_order_vs_deps": "≤ 1.3",
}


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def tables(results: dict[str, Any]) -> str:
    """The figures with their runs, spread and goal; the scale-out tables; the machine's load."""
    details: dict[str, dict[str, Any]] = results.get("details", {})
    lines = ["| figure | median | runs | spread | goal |", "|---|---|---|---|---|"]
    for name in sorted(details, key=lambda n: (n not in GOALS, n)):
        detail = details[name]
        runs = ", ".join(_number(run) for run in detail["runs"])
        lines.append(
            f"| `{name}` | {_number(detail['median'])} | {runs} | {detail['spread_pct']} % | {GOALS.get(name, '')} |"
        )
    singles = [name for name, value in results.items() if isinstance(value, int | float) and name not in details]
    if singles:
        lines += ["", "| figure (one measurement) | value |", "|---|---|"]
        lines += [f"| `{name}` | {_number(results[name])} |" for name in sorted(singles)]
    if results.get("lookup_scale_out"):
        lines += [
            "",
            "| get_order workers | memcached servers | hot req/s | memcached-tier req/s |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['workers']} | {r['memcached_servers']} | {r['hot_rps']:,} | {r['memcached_tier_rps']:,} |"
            for r in results["lookup_scale_out"]
        ]
    if results.get("ingest_scale_out"):
        lines += ["", "| partitions | triggers | orders/s |", "|---|---|---|"]
        lines += [
            f"| {r['partitions']} | {r['triggers']} | {r['orders_per_s']:,} |" for r in results["ingest_scale_out"]
        ]
    if results.get("peak_rss_mb"):
        lines += ["", "| benchmark | service | peak RSS, MiB (each process) |", "|---|---|---|"]
        for bench, services in results["peak_rss_mb"].items():
            for service, processes in services.items():
                lines.append(f"| {bench} | {service} | {', '.join(f'{mb:.0f}' for mb in processes.values())} |")
    if results.get("machine"):
        lines += ["", f"Machine: `{json.dumps(results['machine'], sort_keys=True)}`"]
    return "\n".join(lines)


def main(path: Path = RESULTS) -> None:
    print(tables(json.loads(path.read_text(encoding="utf-8"))))


if __name__ == "__main__":
    main()
