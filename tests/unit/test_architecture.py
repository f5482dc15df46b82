"""The layout is the architecture: the domain imports only itself, only the composition root names concrete
adapters, and what ships to Lambda (the layer, the handlers) loads neither the local stand-ins nor a web server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("get_order", "ingest_order", "generate_orders", "provision")
# What the local entries (functions-framework, its servers) and the local tools bring; a handler loads none.
LOCAL_ONLY = (
    "flask",
    "werkzeug",
    "functions_framework",
    "starlette",
    "uvicorn",
    "gunicorn",
    "watchdog",
    "granian",
    "tqdm",
    "orders_local",
)


def test_import_contracts_hold() -> None:
    # In a process of its own: import-linter configures logging with dictConfig, which disables every logger
    # that exists (the functions' own, imported when the tests were collected) for the rest of the session.
    linted = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr


def loaded_by_handler(function: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` loading ``function``'s handler module loads, in a fresh interpreter."""
    source = str(ROOT / "functions" / function / "main.py")
    probe = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('handler', {source!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "assert callable(module.handler)\n"
        f"print(','.join(sorted(m for m in {modules!r} if m in sys.modules)))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    return loaded.split(",") if loaded else []


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_lambda_handler_module_loads_no_web_server_nor_local_tool(function: str) -> None:
    assert loaded_by_handler(function, LOCAL_ONLY) == []


def test_the_lookup_handler_loads_neither_the_aws_sdk_nor_the_kafka_client() -> None:
    """get_order sends no dead letter and reads no topic: boto3 and confluent-kafka were two thirds of its imports.
    (Powertools loads botocore itself, to name itself in the SDK's user agent.)"""
    assert loaded_by_handler("get_order", ("boto3", "confluent_kafka")) == []


def test_the_layer_holds_orders_core_and_not_the_local_package(tmp_path: Path) -> None:
    subprocess.run([str(ROOT / "layer" / "build.sh"), str(tmp_path), "--no-deps"], check=True)
    shipped = tmp_path / "python"
    assert sorted(p.name for p in shipped.iterdir()) == ["orders_core"]
    assert list((shipped / "orders_core" / "adapters" / "migrations").glob("*.sql")), "the migrations ship"
