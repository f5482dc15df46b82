"""``orders-setup``: the one idempotent set-up step — database migrations, the Kafka topic, the dead-letter
queue. The native runner, docker compose and the tests run it; in the cloud the stack's provisioning runs the
same migration and topic steps (functions/provision)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable

from orders_core.adapters.kafka_admin import KafkaTopicSettings, TopicRefused, ensure_topic
from orders_core.adapters.kafka_client import KafkaAuthError
from orders_core.adapters.kafka_dlq import KafkaDeadLetterSettings, dead_letter_topics, ensure_topics
from orders_core.adapters.postgres import PostgresSettings, migrate
from orders_core.adapters.sqs import SqsSettings, ensure_queue
from orders_core.config import Settings, get_settings, narrow
from orders_core.http.logs import configure_logging

log = logging.getLogger("orders_local.provision")
STEPS = ("migrate", "topic", "queue")


def ensure_topics_of_orders(settings: Settings) -> str:
    """The orders' topic, and beside it the dead letters' (DEAD_LETTER_SINK=kafka) and orders-dlq's ledger."""
    letters = narrow(settings, KafkaDeadLetterSettings)
    topics = ensure_topics(letters, dead_letter_topics(letters))
    return "; ".join([ensure_topic(narrow(settings, KafkaTopicSettings)), *topics])


def ensure_dead_letter_queue(settings: Settings) -> str:
    return f"queue {ensure_queue(narrow(settings, SqsSettings))}"


def run(steps: tuple[str, ...], wait_s: float, settings: Settings) -> None:
    """Run each step, retrying while its service is still starting, for at most ``wait_s`` seconds."""
    actions: dict[str, Callable[[Settings], str]] = {
        "migrate": lambda settings: migrate(narrow(settings, PostgresSettings)),
        "topic": ensure_topics_of_orders,
        "queue": ensure_dead_letter_queue,
    }
    deadline = time.monotonic() + wait_s
    for step in steps:
        delay = 0.25
        while True:
            try:
                log.info("%s: %s", step, actions[step](settings))
                break
            except (TopicRefused, KafkaAuthError) as exc:  # retrying cannot help: say why at once
                raise SystemExit(f"orders-setup: {step} failed: {exc}") from exc
            except Exception as exc:
                if time.monotonic() + delay > deadline:
                    raise SystemExit(f"orders-setup: {step} failed: {exc}") from exc
                log.debug("%s: waiting (%s)", step, exc)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orders-setup", description=__doc__)
    parser.add_argument("--wait", action="store_true", help="wait for the services to come up (see --timeout)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait with --wait")
    parser.add_argument("--only", action="append", choices=STEPS, help="run only these steps (repeatable)")
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    logging.getLogger("orders_core").setLevel(logging.INFO)
    steps = tuple(args.only) if args.only else STEPS
    run(steps, args.timeout if args.wait else 0.0, get_settings())


if __name__ == "__main__":
    main(sys.argv[1:])
