"""Logging set-up shared by the functions and the trigger: one line per event, level from ``LOG_LEVEL``."""

from __future__ import annotations

import logging

from .config import get_settings


def configure_logging() -> None:
    level = get_settings().log_level
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("orders_core").setLevel(level)
