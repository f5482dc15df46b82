"""The chaos run in short: the whole pipeline under a steady stream while its processes are SIGKILLed."""

from __future__ import annotations

from pathlib import Path

from bench.chaos import TARGETS, run_chaos


def test_processes_killed_at_random_under_load_lose_and_duplicate_nothing(work_dir: Path) -> None:
    # GIVEN the pipeline fed 200 orders/s, 5 % of them invalid (not JSON, wrong types, missing fields, ...)
    # WHEN for 30 s ingest_order, memcached, PostgreSQL, the trigger and the Kafka broker are SIGKILLed at
    #      random moments, one at a time, each restarted on its port and data directory after a random pause
    #      (seed 19 orders the first round so; Kafka, whose restart takes about 15 s, comes last)
    #      AND THEN for 15 s 300 dead letters are redriven by orders-dlq, run again after each failed run, while the
    #      trigger, ingest_order, Kafka and the dead-letter endpoint are SIGKILLed
    figures = run_chaos(30, work_dir, seed=19, gap_s=(0.5, 2.0), redrive_s=15)
    # THEN every valid order in the topic is stored once and equal to what was sent, every invalid record is
    #      dead-lettered, nothing is stored that was not produced, and every partition is committed to its end;
    #      and each redriven record is in the topic exactly once more, its letter gone
    assert all(figures[f"faults_{target}"] >= 1 for target in TARGETS), figures
    assert figures["produced"] > 3000 and figures["invalid"] > 50, figures
    assert figures["lost"] == 0, figures
    assert figures["duplicated"] == 0, figures
    assert figures["stored_not_produced"] == 0 and figures["partitions_behind"] == 0, figures
    assert figures["redrive_faults"] >= 1 and figures["redrive_runs"] >= 1, figures
    assert (figures["redrive_lost"], figures["redrive_twice"], figures["redrive_letters_left"]) == (0, 0, 0), figures
