"""``orders-generate N [--seed S] [--invalid-ratio R] [--max-items M] [--no-progress]``: test orders onto Kafka."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from orders_core.config import Settings, get_settings
from orders_core.generator.builder import DEFAULT_MAX_ITEMS
from orders_core.generator.producer import (
    GenerateRequest,
    ProduceError,
    ProduceResult,
    describe_request_error,
    produce_orders,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orders-generate", description="Produce test orders to Kafka.")
    parser.add_argument("count", type=int, help="how many orders")
    parser.add_argument("--seed", type=int, default=None, help="same seed, same orders")
    parser.add_argument("--invalid-ratio", type=float, default=0.0, help="share of invalid orders, 0..1")
    parser.add_argument("--max-items", type=int, default=DEFAULT_MAX_ITEMS, help="items per order, 1..N")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _produce(request: GenerateRequest, settings: Settings, show_progress: bool) -> ProduceResult:
    if not show_progress:
        return produce_orders(request, settings)
    from tqdm import tqdm

    with tqdm(total=request.count, unit="order", unit_scale=True, desc="orders", file=sys.stderr) as bar:
        return produce_orders(request, settings, progress=bar.update)


def main(argv: list[str] | None = None) -> int:
    """Produce the orders the arguments ask for; 0 when Kafka acknowledged all, 1 when not, 2 on bad arguments."""
    args = _parser().parse_args(argv)
    try:
        request = GenerateRequest(
            count=args.count, seed=args.seed, invalid_ratio=args.invalid_ratio, max_items=args.max_items
        )
    except ValidationError as exc:
        print(f"orders-generate: {describe_request_error(exc)}", file=sys.stderr)
        return 2
    settings = get_settings()
    try:
        result = _produce(request, settings, show_progress=not args.no_progress and sys.stderr.isatty())
    except ProduceError as exc:
        print(f"orders-generate: FAILED: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bad configuration, e.g. an unparsable bootstrap address
        print(f"orders-generate: FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(
        f"produced {result.produced} orders ({result.invalid} invalid) to {settings.kafka_topic!r} at "
        f"{settings.kafka_bootstrap_servers} in {result.elapsed_s:.2f} s ({result.rate:,.0f}/s); "
        f"first: {', '.join(result.sample_uids[:3])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
