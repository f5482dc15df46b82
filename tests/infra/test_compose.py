"""infra/docker-compose.yml agrees with the native runner, the settings model and infra/Dockerfile.

The Procfile is the source of truth for processes, commands and ports; ``orders_core.config.Settings`` for
environment variable names and default ports. Nothing here needs Docker: the files are parsed. Each check
returns the problems it finds, and the mutation tests at the end prove that every check can fail.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import ValidationError

from orders_core.config import Settings

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "infra" / "docker-compose.yml"
PROCFILE = ROOT / "Procfile"
FUNCTION_SH = ROOT / "infra" / "native" / "function.sh"
WAIT_SETUP_SH = ROOT / "infra" / "native" / "wait-setup.sh"
KAFKA_POM = ROOT / "infra" / "kafka" / "pom.xml"
SQS_POM = ROOT / "infra" / "sqs" / "pom.xml"
SQS_CONF = ROOT / "infra" / "sqs" / "elasticmq.conf"
DOCKERFILE = ROOT / "infra" / "Dockerfile"

# Procfile process -> compose service, where the names differ.
PROCESS_TO_SERVICE = {"aws": "sqs"}
# Compose services that have no Procfile process: the one-shot setup and the on-demand generator.
EXTRA_SERVICES = {"setup", "generate"}
# The fixed ports of the stack; the Procfile and the Settings defaults must amount to exactly these.
FIXED_PORTS = {
    "postgres": 5432,
    "memcached": 11211,
    "kafka": 9092,
    "aws": 4566,
    "get_order": 8080,
    "ingest_order": 8081,
    "generate_orders": 8082,
    "front": 3000,
}
# What our containers may set besides Settings fields: dummy credentials for the AWS SDK (ElasticMQ takes any),
# the image's function selection (infra/Dockerfile), functions-framework's own variables, the log level.
EXTRA_ENV = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "FUNCTION",
    "FUNCTION_TARGET",
    "FUNCTION_USE_ASGI",
    "PORT",
    "WORKERS",
    "THREADS",
    "LOG_LEVEL",
}
# Settings variables whose value addresses another process of the Procfile.
ADDRESS_VARS = {
    "PGHOST": "postgres",
    "MEMCACHED_SERVERS": "memcached",
    "KAFKA_BOOTSTRAP_SERVERS": "kafka",
    "AWS_ENDPOINT_URL": "aws",
    "INGEST_URL": "ingest_order",
}
ONE_SHOT_RESTART = {None, "no"}

Compose = dict[str, Any]


# ------------------------------------------------------------------------------------------ sources


def load_compose() -> Compose:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def load_procfile() -> dict[str, str]:
    processes = {}
    for line in PROCFILE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            processes[name.strip()] = command.strip()
    return processes


def _port(address: str) -> int:
    """The port of ``host:port`` or of a URL."""
    if "//" in address:
        port = urlsplit(address).port
        assert port is not None, address
        return port
    return int(address.rsplit(":", 1)[1])


def _url_address(url: str | None) -> tuple[str | None, int | None]:
    parts = urlsplit(url or "")
    return parts.hostname, parts.port


def procfile_ports(procfile: Mapping[str, str]) -> dict[str, int]:
    """Ports the Procfile names for a process (``${..._PORT:-N}``)."""
    ports = {}
    for name, command in procfile.items():
        match = re.search(r"\$\{\w*PORT\w*:-(\d+)\}", command)
        if match:
            ports[name] = int(match.group(1))
    return ports


def settings_ports() -> dict[str, int]:
    """Ports the Settings defaults name for a process."""
    defaults = Settings.model_construct()
    return {
        "postgres": defaults.pg_port,
        "memcached": _port(defaults.memcached_server_list[0]),
        "kafka": _port(defaults.kafka_bootstrap_servers.split(",")[0]),
        "aws": _port(str(defaults.aws_endpoint_url)),
        "ingest_order": _port(defaults.ingest_url),
    }


def expected_ports(procfile: Mapping[str, str]) -> dict[str, int]:
    return {**settings_ports(), **procfile_ports(procfile)}


def settings_env_names() -> set[str]:
    return Settings.environment_names()


def read_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


def shell_command(instructions: list[tuple[str, str]]) -> str:
    """The shell text of the image's CMD (``["sh", "-c", "..."]``)."""
    cmd = [rest for keyword, rest in instructions if keyword == "CMD"][-1]
    argv = json.loads(cmd)
    assert argv[:2] == ["sh", "-c"], argv
    return str(argv[2])


def native_function_command() -> str:
    """The functions-framework line of infra/native/function.sh."""
    text = FUNCTION_SH.read_text().replace("\\\n", " ")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return next(line for line in lines if "functions-framework" in line)


def framework_invocation(command: str, name_variable: str) -> dict[str, str]:
    """functions-framework's --source (with the function name as ``{name}``), --target and --host."""
    words = shlex.split(command)
    if "functions-framework" not in words:
        return {}
    start = words.index("functions-framework")
    options = dict(zip(words[start + 1 :: 2], words[start + 2 :: 2], strict=False))
    source = re.sub(r"^\$\{?root\}?/", "", options.get("--source", ""))
    source = re.sub(r"\$\{?" + name_variable + r"\}?", "{name}", source)
    return {
        "source": source,
        "target": options.get("--target", ""),
        "host": options.get("--host", ""),
        "port": options.get("--port", ""),
    }


# ------------------------------------------------------------------------------------------ helpers


def ours(service: Mapping[str, Any]) -> bool:
    """Built from this repository (as opposed to a public image)."""
    return "build" in service


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def published_ports(service: Mapping[str, Any]) -> list[tuple[int, int]]:
    """(host port, container port) of every published port."""
    pairs = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            if entry.get("published") is not None:
                pairs.append((int(entry["published"]), int(entry["target"])))
            continue
        parts = str(entry).split("/")[0].split(":")
        if len(parts) >= 2:
            pairs.append((int(parts[-2]), int(parts[-1])))
    return pairs


def depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def hostnames(compose: Compose) -> dict[str, str]:
    """Every name a service is reached by on the compose network -> the service."""
    names = {}
    for name, service in compose["services"].items():
        names[name] = name
        networks = service.get("networks") or {}
        if isinstance(networks, dict):
            for network in networks.values():
                for alias in (network or {}).get("aliases", []):
                    names[alias] = name
    return names


def network_ports(compose: Compose, name: str) -> set[int]:
    """Ports other containers can use to reach the service."""
    service = compose["services"][name]
    env = environment(service)
    if "KAFKA_ADVERTISED_LISTENERS" in env:  # a broker answers with its advertised addresses
        reach = {host for host, target in hostnames(compose).items() if target == name}
        return {
            int(port)
            for _, host, port in re.findall(r"(\w+)://([^:,]+):(\d+)", env["KAFKA_ADVERTISED_LISTENERS"])
            if host in reach
        }
    ports = {container for _, container in published_ports(service)}
    ports |= {int(p) for p in service.get("expose") or []}
    if "PORT" in env:
        ports.add(int(env["PORT"]))
    return ports


def has_healthcheck(service: Mapping[str, Any]) -> bool:
    check = service.get("healthcheck")
    if check is not None:
        return not check.get("disable", False) and check.get("test") not in (None, ["NONE"])
    if ours(service):  # inherits the image's HEALTHCHECK
        instructions = read_dockerfile(dockerfile_path(service).read_text())
        return any(keyword == "HEALTHCHECK" for keyword, _ in instructions)
    return False


def dockerfile_path(service: Mapping[str, Any]) -> Path:
    build = service["build"]
    if isinstance(build, str):
        return COMPOSE_FILE.parent / build / "Dockerfile"
    return COMPOSE_FILE.parent / build.get("context", ".") / build.get("dockerfile", "Dockerfile")


def build_context(service: Mapping[str, Any]) -> Path:
    build = service["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    return (COMPOSE_FILE.parent / context).resolve()


def command_argv(value: Any) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def settings_from(env: Mapping[str, str]) -> Settings:
    """Settings as a container with exactly this environment would see them."""
    with mock.patch.dict(os.environ, env, clear=True):
        return Settings()


def function_processes(procfile: Mapping[str, str]) -> dict[str, tuple[str, int]]:
    """Procfile process -> (function folder, port) for the processes run by function.sh."""
    functions = {}
    for name, command in procfile.items():
        match = re.match(r"infra/native/function\.sh\s+(\w+)\s+\$\{\w+:-(\d+)\}", command)
        if match:
            functions[name] = (match.group(1), int(match.group(2)))
    return functions


# ------------------------------------------------------------------------------------------ checks


def check_counterparts(compose: Compose, procfile: Mapping[str, str]) -> list[str]:
    services = set(compose["services"])
    wanted = {PROCESS_TO_SERVICE.get(p, p) for p in procfile}
    problems = [
        f"Procfile process {p!r} has no service" for p in procfile if PROCESS_TO_SERVICE.get(p, p) not in services
    ]
    problems += [f"service {s!r} has no Procfile process" for s in sorted(services - wanted - EXTRA_SERVICES)]
    problems += [f"service {s!r} is missing" for s in sorted(EXTRA_SERVICES - services)]
    return problems


def check_published_ports(compose: Compose, procfile: Mapping[str, str]) -> list[str]:
    problems = []
    expected = expected_ports(procfile)
    for process, port in expected.items():
        service = compose["services"].get(PROCESS_TO_SERVICE.get(process, process))
        if service is None:
            continue
        hosts = [host for host, _ in published_ports(service)]
        if hosts != [port]:
            problems.append(f"{process}: publishes {hosts}, the Procfile/config port is {port}")
    seen: dict[int, str] = {}
    for name, service in compose["services"].items():
        for host, _ in published_ports(service):
            if host in seen:
                problems.append(f"host port {host} published by {seen[host]} and {name}")
            seen[host] = name
    for name in EXTRA_SERVICES & set(compose["services"]):
        if published_ports(compose["services"][name]):
            problems.append(f"{name} publishes a port")
    return problems


def check_env_names(compose: Compose) -> list[str]:
    allowed = settings_env_names() | EXTRA_ENV
    return [
        f"{name}: {var} is not a Settings field (nor in the allowlist)"
        for name, service in compose["services"].items()
        if ours(service)
        for var in environment(service)
        if var not in allowed
    ]


def check_env_values(compose: Compose, procfile: Mapping[str, str]) -> list[str]:
    """Values parse as Settings, and every address names the right service on the right port."""
    problems = []
    expected = expected_ports(procfile)
    names = hostnames(compose)
    for name, service in compose["services"].items():
        if not ours(service):
            continue
        env = environment(service)
        try:
            settings = settings_from(env)
        except ValidationError as exc:
            problems.append(f"{name}: invalid settings: {exc.errors(include_url=False)}")
            continue
        addresses = {
            "PGHOST": [(settings.pg_host, settings.pg_port)],
            "MEMCACHED_SERVERS": [(s.rsplit(":", 1)[0], _port(s)) for s in settings.memcached_server_list],
            "KAFKA_BOOTSTRAP_SERVERS": [
                (s.rsplit(":", 1)[0], _port(s)) for s in settings.kafka_bootstrap_servers.split(",")
            ],
            "AWS_ENDPOINT_URL": [_url_address(settings.aws_endpoint_url)],
            "INGEST_URL": [_url_address(settings.ingest_url)],
        }
        for var, process in ADDRESS_VARS.items():
            if var not in env:
                problems.append(f"{name}: {var} is not set (the default is for the native runner)")
                continue
            target = PROCESS_TO_SERVICE.get(process, process)
            for host, port in addresses[var]:
                if names.get(str(host)) != target:
                    problems.append(f"{name}: {var} host {host!r} does not reach the {target!r} service")
                elif port != expected[process]:
                    problems.append(f"{name}: {var} port {port} is not {process}'s port {expected[process]}")
                elif port not in network_ports(compose, target):
                    problems.append(f"{name}: {var}: {target} does not listen on {port} in the network")
    return problems


def check_functions(compose: Compose, procfile: Mapping[str, str]) -> list[str]:
    """Each function service serves the folder and port its Procfile process does, with the image's CMD."""
    problems = []
    for process, (folder, port) in function_processes(procfile).items():
        service = compose["services"].get(process)
        if service is None:
            continue
        env = environment(service)
        if env.get("FUNCTION") != folder:
            problems.append(f"{process}: FUNCTION={env.get('FUNCTION')!r}, the Procfile serves {folder!r}")
        if env.get("PORT") != str(port):
            problems.append(f"{process}: PORT={env.get('PORT')!r}, the Procfile's port is {port}")
        if not (ROOT / "functions" / folder / "main.py").is_file():
            problems.append(f"{process}: functions/{folder}/main.py does not exist")
        if not ours(service) or "command" in service or "entrypoint" in service:
            problems.append(f"{process}: must run infra/Dockerfile's CMD (functions-framework)")
    return problems


def check_commands(compose: Compose, procfile: Mapping[str, str]) -> list[str]:
    """Commands are the package's console scripts, as the native runner calls them."""
    problems = []
    scripts = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])
    for name, service in compose["services"].items():
        argv = command_argv(service.get("entrypoint")) or command_argv(service.get("command"))
        if ours(service) and argv and argv[0] not in scripts:
            problems.append(f"{name}: {argv[0]!r} is not a console script of the package")
    setup_line = next(line for line in WAIT_SETUP_SH.read_text().splitlines() if line.startswith("orders-setup"))
    setup = compose["services"].get("setup", {})
    if command_argv(setup.get("command")) != shlex.split(setup_line):
        problems.append(f"setup: command is not {setup_line!r} (infra/native/wait-setup.sh)")
    for process, command in procfile.items():
        words = shlex.split(command)
        if words and words[0] == "infra/native/wait-setup.sh":
            service = compose["services"].get(PROCESS_TO_SERVICE.get(process, process), {})
            if command_argv(service.get("command")) != words[1:]:
                problems.append(f"{process}: command is not {words[1:]} as in the Procfile")
    # function.sh and wait-setup.sh run `orders-setup --wait` first: compose waits for the setup service.
    for name, service in compose["services"].items():
        if ours(service) and name != "setup" and depends_on(service).get("setup") != "service_completed_successfully":
            problems.append(f"{name}: does not wait for setup to complete successfully")
    generate = compose["services"].get("generate", {})
    if command_argv(generate.get("entrypoint")) != ["orders-generate"] or not generate.get("profiles"):
        problems.append("generate: must be `orders-generate` under a profile (docker compose run --rm generate N)")
    return problems


def check_depends_on(compose: Compose) -> list[str]:
    services = compose["services"]
    problems = []
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            if target not in services:
                problems.append(f"{name}: depends on unknown service {target!r}")
            elif condition == "service_healthy" and not has_healthcheck(services[target]):
                problems.append(f"{name}: waits for {target} to be healthy, which has no healthcheck")
            elif condition == "service_completed_successfully" and (
                services[target].get("restart") not in ONE_SHOT_RESTART or published_ports(services[target])
            ):
                problems.append(f"{name}: waits for {target} to complete, which is not a one-shot service")
            elif condition not in {"service_started", "service_healthy", "service_completed_successfully"}:
                problems.append(f"{name}: unknown condition {condition!r}")
            elif services[target].get("profiles") and not service.get("profiles"):
                problems.append(f"{name}: depends on {target}, which only runs under a profile")
    # No cycles.
    state: dict[str, int] = {}

    def visit(node: str, path: tuple[str, ...]) -> None:
        if state.get(node) == 2 or node not in services:
            return
        if state.get(node) == 1:
            problems.append(f"dependency cycle: {' -> '.join((*path, node))}")
            return
        state[node] = 1
        for target in depends_on(services[node]):
            visit(target, (*path, node))
        state[node] = 2

    for name in services:
        visit(name, ())
    return problems


def check_volumes(compose: Compose) -> list[str]:
    declared = set(compose.get("volumes") or {})
    problems = []
    for name, service in compose["services"].items():
        for volume in service.get("volumes") or []:
            if isinstance(volume, dict):
                kind, source = volume.get("type", "volume"), volume.get("source")
            else:
                source = str(volume).split(":")[0]
                kind = "bind" if source.startswith((".", "/", "~", "$")) else "volume"
            if kind == "volume" and source and source not in declared:
                problems.append(f"{name}: named volume {source!r} is not declared")
            if kind == "bind" and not (COMPOSE_FILE.parent / str(source)).exists():
                problems.append(f"{name}: bind mount source {source!r} does not exist")
    return problems


def check_builds(compose: Compose) -> list[str]:
    """Every build names an existing Dockerfile whose context is the repository root."""
    problems = []
    for name, service in compose["services"].items():
        if not ours(service):
            continue
        if not dockerfile_path(service).is_file():
            problems.append(f"{name}: Dockerfile {dockerfile_path(service)} does not exist")
        if build_context(service) != ROOT:
            problems.append(f"{name}: the build context is {build_context(service)}, not the repository root")
    return problems


def check_images(compose: Compose) -> list[str]:
    problems = []
    pom_version = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", KAFKA_POM.read_text())
    assert pom_version, "kafka.version not found in infra/kafka/pom.xml"
    sqs_version = re.search(r"<elasticmq\.version>([^<]+)</elasticmq\.version>", SQS_POM.read_text())
    assert sqs_version, "elasticmq.version not found in infra/sqs/pom.xml"
    for name, service in compose["services"].items():
        image = service.get("image")
        if image is None:
            continue
        repository, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
        if not tag or tag == "latest":
            problems.append(f"{name}: image {image!r} is not pinned")
        if repository == "apache/kafka" and tag != pom_version.group(1):
            problems.append(f"{name}: {image} is not the Kafka version the native runner uses ({pom_version.group(1)})")
        if repository == "softwaremill/elasticmq-native" and tag != sqs_version.group(1):
            problems.append(f"{name}: {image} is not the ElasticMQ of infra/sqs/pom.xml ({sqs_version.group(1)})")
    return problems


def check_sqs(compose: Compose) -> list[str]:
    """The SQS container runs the native runner's configuration, with its database on a named volume."""
    service = compose["services"].get(PROCESS_TO_SERVICE["aws"], {})
    mounts = [str(v).split(":") for v in service.get("volumes") or []]
    config = [m for m in mounts if len(m) >= 2 and m[1] == "/opt/elasticmq.conf"]
    problems = []
    if not config or (COMPOSE_FILE.parent / config[0][0]).resolve() != SQS_CONF:
        problems.append("sqs: /opt/elasticmq.conf is not infra/sqs/elasticmq.conf")
    data_dir = environment(service).get("SQS_DATA_DIR", "/data")  # the file's default
    if not any(len(m) >= 2 and m[1] == data_dir and not m[0].startswith(".") for m in mounts):
        problems.append(f"sqs: the database folder {data_dir} is not on a named volume")
    return problems


def check_kafka_listeners(compose: Compose, procfile: Mapping[str, str]) -> list[str]:
    """The host reaches localhost:<port>, containers kafka:<port>, and each is told its own address back."""
    env = environment(compose["services"]["kafka"])
    port = expected_ports(procfile)["kafka"]
    listeners = dict(re.findall(r"(\w+)://[^:,]*:(\d+)", env.get("KAFKA_LISTENERS", "")))
    advertised = {
        name: (host, int(p))
        for name, host, p in re.findall(r"(\w+)://([^:,]+):(\d+)", env.get("KAFKA_ADVERTISED_LISTENERS", ""))
    }
    problems = []
    for host_port, container_port in published_ports(compose["services"]["kafka"]):
        names = [n for n, p in listeners.items() if int(p) == container_port]
        if not names or advertised.get(names[0]) != ("localhost", host_port):
            problems.append(
                f"kafka: published {host_port}->{container_port} is not advertised as localhost:{host_port}"
            )
    if port not in network_ports(compose, "kafka"):
        problems.append(f"kafka: not advertised as kafka:{port} to the containers")
    return problems


def check_postgres_credentials(compose: Compose) -> list[str]:
    server = environment(compose["services"]["postgres"])
    wanted = {"PGUSER": "POSTGRES_USER", "PGPASSWORD": "POSTGRES_PASSWORD", "PGDATABASE": "POSTGRES_DB"}
    return [
        f"{name}: {var}={env[var]!r} but postgres has {server_var}={server.get(server_var)!r}"
        for name, service in compose["services"].items()
        if ours(service)
        for env in [environment(service)]
        for var, server_var in wanted.items()
        if var in env and env[var] != server.get(server_var)
    ]


def check_front(compose: Compose) -> list[str]:
    volumes = [str(v) for v in compose["services"]["front"].get("volumes") or []]
    sources = {(COMPOSE_FILE.parent / v.split(":")[0]).resolve() for v in volumes}
    if (ROOT / "front") not in sources or not (ROOT / "front" / "index.html").is_file():
        return ["front: does not serve the repository's front/ folder"]
    return []


def check_dockerfile(text: str, native_command: str) -> list[str]:
    """The image installs the package as the native runner does and serves a function as function.sh does."""
    problems = []
    instructions = read_dockerfile(text)
    if not instructions or instructions[0] != ("FROM", "python:3.12-slim"):
        problems.append("Dockerfile: not FROM python:3.12-slim")
    copies = {rest.split()[0] for keyword, rest in instructions if keyword == "COPY"}
    if not {"pyproject.toml", "src", "functions"} <= copies:
        problems.append(f"Dockerfile: copies {sorted(copies)}, not pyproject.toml, src and functions")
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    if not re.search(r"pip install (?:\S+ )*['\"]?\.\[functions\]['\"]?(?:\s|$)", runs):
        problems.append("Dockerfile: does not `pip install '.[functions]'` (the repository with the functions extra)")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    if not any(dep.startswith("functions-framework") for dep in extras.get("functions", [])):
        problems.append("pyproject.toml: the functions extra does not bring functions-framework")
    users = [rest.split(":")[0] for keyword, rest in instructions if keyword == "USER"]
    if not users or users[-1] in {"root", "0"}:
        problems.append("Dockerfile: runs as root")
    declared = {
        word.split("=")[0] for keyword, rest in instructions if keyword in {"ARG", "ENV"} for word in rest.split()
    }
    if not {"FUNCTION", "PORT"} <= declared:
        problems.append("Dockerfile: FUNCTION and PORT have no default")
    native_defaults = dict(re.findall(r"(WORKERS|THREADS)=\"\$\{\1:-(\d+)\}\"", FUNCTION_SH.read_text()))
    env_defaults = dict(
        word.split("=", 1) for keyword, rest in instructions if keyword == "ENV" for word in rest.split() if "=" in word
    )
    for var, value in native_defaults.items():
        if env_defaults.get(var) != value:
            problems.append(f"Dockerfile: {var}={env_defaults.get(var)}, function.sh runs gunicorn with {value}")
    native = framework_invocation(native_command, "name")
    try:
        image = framework_invocation(shell_command(instructions), "FUNCTION")
    except (IndexError, ValueError, AssertionError):
        image = {}
    if not image:
        problems.append("Dockerfile: CMD does not run functions-framework")
    else:
        for option in ("source", "target"):
            if image[option] != native[option]:
                problems.append(f"Dockerfile: --{option} {image[option]!r}, function.sh has {native[option]!r}")
        if image["host"] != "0.0.0.0":  # noqa: S104 - inside a container
            problems.append("Dockerfile: functions-framework does not listen on 0.0.0.0")
        if image["port"] not in {"$PORT", "${PORT}"}:
            problems.append("Dockerfile: functions-framework does not listen on $PORT")
    if native.get("target") != "http_entry" or native.get("source") != "functions/{name}/main.py":
        problems.append(f"function.sh: unexpected functions-framework invocation {native}")
    return problems


def all_problems(compose: Compose, procfile: Mapping[str, str]) -> list[str]:
    return [
        *check_counterparts(compose, procfile),
        *check_published_ports(compose, procfile),
        *check_env_names(compose),
        *check_env_values(compose, procfile),
        *check_functions(compose, procfile),
        *check_commands(compose, procfile),
        *check_depends_on(compose),
        *check_volumes(compose),
        *check_builds(compose),
        *check_images(compose),
        *check_sqs(compose),
        *check_kafka_listeners(compose, procfile),
        *check_postgres_credentials(compose),
        *check_front(compose),
    ]


# ------------------------------------------------------------------------------------------ tests


@pytest.fixture(scope="module")
def compose() -> Compose:
    return load_compose()


@pytest.fixture(scope="module")
def procfile() -> dict[str, str]:
    return load_procfile()


@pytest.fixture
def mutable(compose: Compose) -> Iterator[Compose]:
    yield copy.deepcopy(compose)


def test_procfile_and_settings_name_the_fixed_ports(procfile: dict[str, str]) -> None:
    from_procfile, from_settings = procfile_ports(procfile), settings_ports()
    for process in from_procfile.keys() & from_settings.keys():
        assert from_procfile[process] == from_settings[process], process
    assert expected_ports(procfile) == FIXED_PORTS


def test_every_process_has_a_service_and_back(compose: Compose, procfile: dict[str, str]) -> None:
    assert check_counterparts(compose, procfile) == []


def test_published_ports_are_the_native_ports(compose: Compose, procfile: dict[str, str]) -> None:
    assert check_published_ports(compose, procfile) == []


def test_environment_names_are_settings_fields(compose: Compose) -> None:
    assert check_env_names(compose) == []


def test_environment_values_parse_and_address_services(compose: Compose, procfile: dict[str, str]) -> None:
    assert check_env_values(compose, procfile) == []


def test_function_services_serve_the_procfile_functions(compose: Compose, procfile: dict[str, str]) -> None:
    assert function_processes(procfile), "no function.sh process found in the Procfile"
    assert check_functions(compose, procfile) == []


def test_commands_are_the_native_commands(compose: Compose, procfile: dict[str, str]) -> None:
    assert check_commands(compose, procfile) == []


def test_depends_on_conditions_can_be_met(compose: Compose) -> None:
    assert check_depends_on(compose) == []


def test_volumes_are_declared_and_mounts_exist(compose: Compose) -> None:
    assert check_volumes(compose) == []


def test_builds_and_images(compose: Compose) -> None:
    assert check_builds(compose) + check_images(compose) == []


def test_sqs_keeps_the_native_configuration_and_its_data(compose: Compose) -> None:
    assert check_sqs(compose) == []


def test_kafka_listeners_serve_host_and_containers(compose: Compose, procfile: dict[str, str]) -> None:
    assert check_kafka_listeners(compose, procfile) == []


def test_postgres_credentials_match_the_clients(compose: Compose) -> None:
    assert check_postgres_credentials(compose) == []


def test_front_serves_the_page(compose: Compose) -> None:
    assert check_front(compose) == []


def test_one_image_for_every_service_of_ours(compose: Compose) -> None:
    paths = {dockerfile_path(s).resolve() for s in compose["services"].values() if ours(s)}
    assert paths == {DOCKERFILE}


def test_dockerfile_installs_and_runs_like_the_native_runner() -> None:
    assert check_dockerfile(DOCKERFILE.read_text(), native_function_command()) == []


def test_the_whole_file_has_no_problem(compose: Compose, procfile: dict[str, str]) -> None:
    assert all_problems(compose, procfile) == []


# --------------------------------------------------------------------- the checks can fail (mutations)


def _set_env(service: str, var: str, value: str) -> Callable[[Compose], None]:
    def mutate(c: Compose) -> None:
        c["services"][service]["environment"][var] = value

    return mutate


def _drop(path: tuple[str, ...]) -> Callable[[Compose], None]:
    def mutate(c: Compose) -> None:
        node = c
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def _set(path: tuple[str, ...], value: Any) -> Callable[[Compose], None]:
    def mutate(c: Compose) -> None:
        node = c
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _unalias_env(c: Compose) -> None:
    # environment is shared through a YAML anchor: give each service its own copy first.
    for service in c["services"].values():
        if "environment" in service:
            service["environment"] = dict(service["environment"])


MUTATIONS: dict[str, tuple[Callable[[Compose], None], str]] = {
    "wrong host port": (
        _set(("services", "get_order", "ports"), ["127.0.0.1:8090:8080"]),
        "get_order: publishes [8090]",
    ),
    "port published twice": (_set(("services", "front", "ports"), ["127.0.0.1:8081:80"]), "host port 8081"),
    "unknown variable": (_set_env("trigger", "PG_HOSTNAME", "postgres"), "PG_HOSTNAME is not a Settings field"),
    "wrong type": (_set_env("trigger", "PGPORT", "five"), "invalid settings"),
    "address of another service": (_set_env("trigger", "PGHOST", "memcached"), "PGHOST host 'memcached'"),
    "address on another port": (_set_env("trigger", "KAFKA_BOOTSTRAP_SERVERS", "kafka:29092"), "port 29092"),
    "address on the host listener": (_set_env("trigger", "KAFKA_BOOTSTRAP_SERVERS", "kafka:19092"), "port 19092"),
    "native default left": (
        _drop(("services", "trigger", "environment", "AWS_ENDPOINT_URL")),
        "AWS_ENDPOINT_URL is not set",
    ),
    "ingest on its host port only": (_set_env("trigger", "INGEST_URL", "http://localhost:8081"), "INGEST_URL host"),
    "missing service": (_drop(("services", "memcached")), "'memcached' has no service"),
    "service without process": (_set(("services", "redis"), {"image": "redis:7"}), "'redis' has no Procfile process"),
    "wrong function folder": (_set_env("ingest_order", "FUNCTION", "get_order"), "the Procfile serves 'ingest_order'"),
    "wrong function port": (_set_env("ingest_order", "PORT", "9000"), "PORT='9000'"),
    "function command overridden": (_set(("services", "get_order", "command"), ["python", "x.py"]), "must run"),
    "not a console script": (
        _set(("services", "trigger", "command"), ["python", "-m", "x"]),
        "'python' is not a console script",
    ),
    "trigger does not wait for setup": (
        _drop(("services", "trigger", "depends_on", "setup")),
        "trigger: does not wait for setup",
    ),
    "healthy without healthcheck": (_drop(("services", "postgres", "healthcheck")), "postgres to be healthy"),
    "healthcheck disabled": (
        _set(("services", "ingest_order", "healthcheck"), {"disable": True}),
        "ingest_order to be healthy",
    ),
    "completion of a long-running service": (_set(("services", "setup", "restart"), "always"), "not a one-shot"),
    "unknown dependency": (
        _set(("services", "setup", "depends_on", "zookeeper"), {"condition": "service_started"}),
        "unknown service",
    ),
    "dependency cycle": (
        _set(("services", "postgres", "depends_on"), {"setup": {"condition": "service_started"}}),
        "cycle",
    ),
    "undeclared volume": (
        _set(("services", "memcached", "volumes"), ["cache-data:/data"]),
        "'cache-data' is not declared",
    ),
    "missing bind source": (
        _set(("services", "front", "volumes"), ["../no-such-dir:/usr/share/nginx/html:ro"]),
        "does not exist",
    ),
    "missing dockerfile": (
        _set(("services", "trigger", "build"), {"context": "..", "dockerfile": "infra/Nope"}),
        "does not exist",
    ),
    "other build context": (
        _set(("services", "trigger", "build"), {"context": ".", "dockerfile": "Dockerfile"}),
        "build context",
    ),
    "unpinned image": (_set(("services", "memcached", "image"), "memcached"), "is not pinned"),
    "other kafka version": (_set(("services", "kafka", "image"), "apache/kafka:3.7.0"), "Kafka version"),
    "other elasticmq version": (
        _set(("services", "sqs", "image"), "softwaremill/elasticmq-native:1.5.7"),
        "not the ElasticMQ of",
    ),
    "sqs data in the container only": (
        _set(("services", "sqs", "volumes"), ["./sqs/elasticmq.conf:/opt/elasticmq.conf:ro"]),
        "not on a named volume",
    ),
    "sqs with the image's configuration": (
        _set(("services", "sqs", "volumes"), ["sqs-data:/data"]),
        "/opt/elasticmq.conf is not",
    ),
    "host listener not advertised": (
        _set_env("kafka", "KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://kafka:9092,HOST://kafka:19092"),
        "localhost:9092",
    ),
    "other database password": (_set_env("postgres", "POSTGRES_PASSWORD", "secret"), "PGPASSWORD='orders'"),
    "page from elsewhere": (_set(("services", "front", "volumes"), ["../bench:/usr/share/nginx/html:ro"]), "front/"),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_checks_catch_a_broken_file(name: str, mutable: Compose, procfile: dict[str, str]) -> None:
    mutate, expected = MUTATIONS[name]
    _unalias_env(mutable)
    mutate(mutable)
    problems = all_problems(mutable, procfile)
    assert any(expected in problem for problem in problems), problems


DOCKERFILE_MUTATIONS = {
    "no functions extra": (('".[functions]"', '"."'), "pip install"),
    "editable elsewhere": (('pip install ".[functions]"', "pip install orders-core"), "pip install"),
    "other target": (("--target http_entry", "--target main"), "--target 'main'"),
    "other source": (("functions/${FUNCTION}/main.py", "functions/${FUNCTION}/app.py"), "--source"),
    "loopback only": (("--host 0.0.0.0", "--host 127.0.0.1"), "does not listen on 0.0.0.0"),
    "fixed port": (('--port \\"${PORT}\\"', "--port 8080"), "$PORT"),
    "root user": (("USER app", "USER root"), "runs as root"),
    "other gunicorn size": (("THREADS=8", "THREADS=32"), "THREADS=32"),
    "no functions copied": (("COPY functions ./functions", ""), "copies"),
    "other base image": (("FROM python:3.12-slim", "FROM python:3.11"), "python:3.12-slim"),
}


@pytest.mark.parametrize("name", list(DOCKERFILE_MUTATIONS))
def test_dockerfile_check_catches_a_broken_image(name: str) -> None:
    (old, new), expected = DOCKERFILE_MUTATIONS[name]
    text = DOCKERFILE.read_text()
    assert old in text, f"mutation {name!r} no longer applies"
    problems = check_dockerfile(text.replace(old, new), native_function_command())
    assert any(expected in problem for problem in problems), problems


def test_get_order_runs_in_the_same_server_mode_as_the_native_runner() -> None:
    """function.sh serves get_order in functions-framework's ASGI mode (uvicorn); the container must too."""
    function_sh = (ROOT / "infra/native/function.sh").read_text()
    assert 'if [ "$name" = get_order ]; then export FUNCTION_USE_ASGI="${FUNCTION_USE_ASGI:-true}"' in function_sh
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    assert compose["services"]["get_order"]["environment"]["FUNCTION_USE_ASGI"] == "true"
    for name in ("ingest_order", "generate_orders"):
        assert "FUNCTION_USE_ASGI" not in compose["services"][name].get("environment", {})
