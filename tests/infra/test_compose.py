"""infra/docker-compose.yml runs what the Procfile runs, with settings the code reads, each address reaching
the right service. Docker cannot run here: the file is read, and each check is a relation between files."""

from __future__ import annotations

import importlib.util
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import functions_framework
import functions_framework.aio
import pytest
import yaml

from devstack import ROOT
from devstack.services import procfile
from orders_core.config import Settings

# Procfile process -> compose service, where the names differ; compose services with no process.
PROCESS_TO_SERVICE = {"aws": "sqs"}
ONE_SHOTS = {"setup", "generate"}
# What our containers may set besides Settings fields: the AWS SDK's credentials, and the image's own
# variables (the function folder, its callable and port, and gunicorn's workers).
CONTAINER_ENV = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "FUNCTION", "FUNCTION_TARGET", "PORT", "WORKERS"}

Compose = dict[str, Any]


@pytest.fixture(scope="module")
def compose() -> Compose:
    loaded = yaml.safe_load((ROOT / "infra" / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def ours(compose: Compose) -> dict[str, dict[str, str]]:
    """The environment of every service built from this repository."""
    return {
        name: {k: str(v) for k, v in (s.get("environment") or {}).items()}
        for name, s in compose["services"].items()
        if "build" in s
    }


def reachable(compose: Compose) -> dict[tuple[str, int], str]:
    """(host name, port) -> the service answering there on the compose network."""
    found: dict[tuple[str, int], str] = {}
    for name, service in compose["services"].items():
        env = {k: str(v) for k, v in (service.get("environment") or {}).items()}
        aliases = {name, *(service.get("networks") or {}).get("default", {}).get("aliases", [])}
        if "KAFKA_ADVERTISED_LISTENERS" in env:  # a broker is reached at the addresses it advertises
            ports = {
                int(port)
                for host, port in re.findall(r"//([\w-]+):(\d+)", env["KAFKA_ADVERTISED_LISTENERS"])
                if host in aliases
            }
        else:
            ports = {int(str(p).rsplit(":", 1)[1]) for p in service.get("ports") or []}
            ports |= {int(env["PORT"])} if "PORT" in env else set()
        found |= {(alias, port): name for alias in aliases for port in ports}
    return found


def test_every_procfile_process_has_a_service_and_back(compose: Compose) -> None:
    processes = {PROCESS_TO_SERVICE.get(name, name) for name in procfile()}
    assert set(compose["services"]) - ONE_SHOTS == processes


def test_container_environment_names_are_settings_fields(compose: Compose) -> None:
    for name, env in ours(compose).items():
        assert set(env) - Settings.environment_names() - CONTAINER_ENV == set(), name


def test_each_address_reaches_the_right_service(compose: Compose) -> None:
    network = reachable(compose)
    for name, env in ours(compose).items():
        with mock.patch.dict(os.environ, env, clear=True):
            settings = Settings()
        addresses = {
            "postgres": [(settings.pg_host, settings.pg_port)],
            "memcached": [tuple(s.rsplit(":", 1)) for s in settings.memcached_server_list],
            "kafka": [tuple(s.rsplit(":", 1)) for s in settings.kafka_bootstrap_servers.split(",")],
            "sqs": [(urlsplit(settings.aws_endpoint_url).hostname, urlsplit(settings.aws_endpoint_url).port)],
            "ingest_order": [(urlsplit(settings.ingest_url).hostname, urlsplit(settings.ingest_url).port)],
        }
        for service, hosts in addresses.items():
            for host, port in hosts:
                assert network.get((str(host), int(port or 0))) == service, f"{name}: {host}:{port} for {service}"


def test_native_defaults_address_the_procfile_ports() -> None:
    """Settings' defaults are the native runner's addresses: each names the port of its Procfile process."""
    ports = {name: int(m.group(1)) for name, command in procfile().items() if (m := re.search(r":-(\d+)\}", command))}
    defaults = Settings.model_construct()
    assert int(defaults.memcached_server_list[0].rsplit(":", 1)[1]) == ports["memcached"]
    assert urlsplit(defaults.ingest_url).port == ports["ingest_order"]
    assert defaults.trigger_status_port == ports["trigger"]


def test_http_health_checks_ask_the_process_they_check(compose: Compose) -> None:
    """Each HTTP health check asks its own container on the port its process serves (a function's PORT, the
    trigger's or the scheduler's status server), and those status servers are published as the native runner
    serves them."""
    checked = set()
    for name, env in ours(compose).items():
        command = " ".join(compose["services"][name].get("healthcheck", {}).get("test") or [])
        if asked := re.search(r"http://127\.0\.0\.1:(\d+)/", command):
            with mock.patch.dict(os.environ, env, clear=True):
                settings = Settings()
            status_port = settings.scheduler_status_port if name == "scheduler" else settings.trigger_status_port
            assert int(asked.group(1)) == int(env.get("PORT") or status_port), name
            checked.add(name)
    assert {"get_order", "ingest_order", "generate_orders", "trigger", "scheduler"} <= checked
    defaults = Settings.model_construct()
    for name, variable, port in (
        ("trigger", "TRIGGER_STATUS_PORT", defaults.trigger_status_port),
        ("scheduler", "SCHEDULER_STATUS_PORT", defaults.scheduler_status_port),
    ):
        service = compose["services"][name]
        assert service["ports"] == [f"127.0.0.1:{port}:{service['environment'][variable]}"], name


def test_function_services_serve_what_the_procfile_serves(compose: Compose) -> None:
    """The same folder, port and callable as the Procfile's line; and the callable loads."""
    for name, command in procfile().items():
        if "function.sh" not in command:
            continue
        env = ours(compose)[name]
        target = re.search(r"FUNCTION_TARGET=(\w+)", command)
        assert env.get("FUNCTION_TARGET") == (target.group(1) if target else None), name
        assert (env["FUNCTION"], env["PORT"]) == (name, re.search(r":-(\d+)\}", command).group(1))  # type: ignore[union-attr]
        source = str(ROOT / "functions" / name / "main.py")
        if env.get("FUNCTION_TARGET") == "app":  # a plain ASGI app, which granian serves
            spec = importlib.util.spec_from_file_location(f"{name}_main", source)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            assert callable(module.app), name
        elif env.get("FUNCTION_TARGET") == "asgi":
            functions_framework.aio.create_asgi_app("asgi", source)
        else:
            functions_framework.create_app(env.get("FUNCTION_TARGET", "http_entry"), source)


def pom_property(pom: str, name: str) -> str | None:
    root = ET.parse(ROOT / "infra" / pom / "pom.xml").getroot()  # noqa: S314 - our own file
    return root.findtext(f"m:properties/m:{name}", namespaces={"m": "http://maven.apache.org/POM/4.0.0"})


def test_kafka_and_sqs_images_are_the_versions_the_native_runner_fetches(compose: Compose) -> None:
    assert compose["services"]["kafka"]["image"].rpartition(":")[2] == pom_property("kafka", "kafka.version")
    assert compose["services"]["sqs"]["image"].rpartition(":")[2] == pom_property("sqs", "elasticmq.version")


def test_sqs_runs_the_native_configuration_and_keeps_its_data_on_a_volume(compose: Compose) -> None:
    service = compose["services"]["sqs"]
    mounts = dict(str(volume).split(":")[:2][::-1] for volume in service["volumes"])  # container path -> source
    assert (ROOT / "infra" / mounts["/opt/elasticmq.conf"]).resolve() == ROOT / "infra" / "sqs" / "elasticmq.conf"
    data_dir = (service.get("environment") or {}).get("SQS_DATA_DIR", "/data")
    assert data_dir in mounts and mounts[data_dir] in compose["volumes"]


def test_ops_sources_name_processes_at_their_addresses(compose: Compose) -> None:
    """get_order's /ops scrapes each process at its own address: compose's names on the compose network, the
    Procfile's default on each process's port (a process that serves no port yet is checked once it does)."""
    with mock.patch.dict(os.environ, ours(compose)["get_order"], clear=True):
        in_compose = Settings().ops_metrics_sources
    network = reachable(compose)
    for name, url in in_compose.items():
        assert name in procfile(), name
        if name in network.values():
            assert network.get((str(urlsplit(url).hostname), int(urlsplit(url).port or 0))) == name, name
    native = re.search(r'OPS_METRICS_URLS="\$\{OPS_METRICS_URLS-(.*)\}"', procfile()["get_order"])
    assert native, "the Procfile's get_order line sets no OPS_METRICS_URLS default"
    ports = {name: m.group(1) for name, command in procfile().items() if (m := re.search(r":-(\d+)\}", command))}
    for entry in native.group(1).split(","):
        name, _, url = entry.partition("=")
        assert name in in_compose, name
        default_port = re.search(r":-(\d+)\}", url)
        assert default_port and default_port.group(1) == ports.get(name, default_port.group(1)), name


def test_the_trigger_batches_as_the_settings_and_the_template_do(compose: Compose) -> None:
    """The template's mappings batch as Settings' defaults (test_template.py); so does compose's trigger."""
    with mock.patch.dict(os.environ, ours(compose)["trigger"], clear=True):
        trigger = Settings()
    defaults = Settings.model_construct()
    assert (trigger.trigger_batch_size, trigger.trigger_batch_window_s) == (
        defaults.trigger_batch_size,
        defaults.trigger_batch_window_s,
    )


def test_the_page_is_served_as_the_native_runner_serves_it(compose: Compose) -> None:
    """The Procfile's page server (front.sh runs front_server.py) on its port, `?api=` links allowed alike."""
    front, command = compose["services"]["front"], procfile()["front"]
    mounts = dict(reversed(volume.split(":")[:2]) for volume in front["volumes"])
    script, port, served = front["command"][1:]
    assert (ROOT / "infra" / mounts[script]).resolve() == ROOT / "infra" / "native" / "front_server.py"
    assert Path(mounts[script]).name in (ROOT / "infra" / "native" / "front.sh").read_text()
    assert (ROOT / "infra" / mounts[served]).resolve() == ROOT / "front"
    native_port = re.search(r":-(\d+)\}", command)
    assert native_port and front["ports"] == [f"127.0.0.1:{native_port.group(1)}:{port}"]
    allowed = re.search(r"FRONT_ALLOW_API_OVERRIDE=(\S+)", command)
    assert allowed and front["environment"]["FRONT_ALLOW_API_OVERRIDE"] == allowed.group(1)
