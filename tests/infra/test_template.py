"""template.yaml (AWS SAM) lints clean and agrees with the code it deploys.

cfn-lint validates the template (SAM resources included); the rest checks it against the repository: the
function folders and their Lambda handlers, the Settings fields the environment sets, the generator's request
that the schedule sends, the shared layer's build. Mutation tests prove that each check can fail.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint, lint_file
from cfnlint.decode import cfn_yaml
from pydantic import ValidationError

from orders_core.config import Settings
from orders_core.generator import GenerateRequest

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_FILE = ROOT / "template.yaml"
PROCFILE = ROOT / "Procfile"
RUNTIME = "python3.12"
# Names Lambda sets itself and refuses in a function's environment.
LAMBDA_RESERVED = {
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
}
SERVERLESS_FUNCTION = "AWS::Serverless::Function"

Template = dict[str, Any]


# ------------------------------------------------------------------------------------------ helpers


def load_template() -> Template:
    template = cfn_yaml.load(str(TEMPLATE_FILE))
    assert isinstance(template, dict)
    return template


def settings_env_names() -> set[str]:
    return Settings.environment_names()


def functions(template: Template) -> dict[str, dict[str, Any]]:
    return {
        name: resource.get("Properties", {})
        for name, resource in template["Resources"].items()
        if resource["Type"] == SERVERLESS_FUNCTION
    }


def function_environment(template: Template, name: str) -> dict[str, Any]:
    """The variables a function gets: Globals merged with its own (its own win)."""
    globals_ = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    own = functions(template)[name].get("Environment", {}).get("Variables", {})
    return {**globals_, **own}


def function_property(template: Template, name: str, prop: str) -> Any:
    own = functions(template)[name]
    return own[prop] if prop in own else template.get("Globals", {}).get("Function", {}).get(prop)


def parameter_default(template: Template, name: str) -> str:
    return str(template["Parameters"][name]["Default"])


def resolve_sub(template: Template, value: Any) -> str:
    """A Fn::Sub (or plain) string with parameters replaced by their defaults."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        value = value["Fn::Sub"]
    variables: dict[str, Any] = {}
    if isinstance(value, list):
        value, variables = value[0], value[1]
    assert isinstance(value, str), value

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables:
            return str(variables[name])
        return parameter_default(template, name)

    return re.sub(r"\$\{([A-Za-z0-9]+)\}", replace, value)


def handler_parameters(path: Path, name: str) -> list[str] | None:
    """Positional parameters of the top-level function ``name`` in ``path``; None when it is missing."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return [arg.arg for arg in node.args.posonlyargs + node.args.args]
    return None


def procfile_function_folders() -> set[str]:
    return set(re.findall(r"infra/native/function\.sh\s+(\w+)", PROCFILE.read_text()))


def lint_errors(matches: list[Any]) -> list[str]:
    return [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches if m.rule.id[0] in "EW"]


# ------------------------------------------------------------------------------------------ checks


def check_functions(template: Template) -> list[str]:
    """CodeUri folders hold a main.py whose handler Lambda can call, one per function of the Procfile."""
    problems = []
    folders = set()
    for name, props in functions(template).items():
        code = ROOT / str(props.get("CodeUri", ""))
        folders.add(code.name)
        module, _, attribute = str(props.get("Handler", "")).rpartition(".")
        source = code / f"{module}.py"
        if not code.is_dir() or not source.is_file():
            problems.append(f"{name}: {source.relative_to(ROOT)} does not exist")
            continue
        params = handler_parameters(source, attribute)
        if params is None:
            problems.append(f"{name}: {source.relative_to(ROOT)} defines no {attribute!r}")
        elif len(params) < 2:
            problems.append(f"{name}: {attribute}{tuple(params)} cannot take (event, context)")
        if function_property(template, name, "Runtime") != RUNTIME:
            problems.append(f"{name}: runtime is not {RUNTIME}")
    if folders != procfile_function_folders():
        problems.append(f"deployed {sorted(folders)}, the Procfile runs {sorted(procfile_function_folders())}")
    return problems


def check_environment(template: Template) -> list[str]:
    """Only Settings fields, none reserved by Lambda, real AWS endpoints, the stack's own queue."""
    problems = []
    allowed = settings_env_names()
    for name in functions(template):
        env = function_environment(template, name)
        for var in env:
            if var not in allowed:
                problems.append(f"{name}: {var} is not a Settings field")
            if var in LAMBDA_RESERVED:
                problems.append(f"{name}: {var} is reserved by Lambda")
        if env.get("AWS_ENDPOINT_URL", None) != "":
            problems.append(f"{name}: AWS_ENDPOINT_URL must be empty (the default points at LocalStack)")
        if env.get("DLQ_QUEUE_URL") != {"Ref": "OrdersDeadLetterQueue"}:
            problems.append(f"{name}: DLQ_QUEUE_URL is not the stack's queue")
        if env.get("DLQ_QUEUE_NAME") != {"Fn::GetAtt": ["OrdersDeadLetterQueue", "QueueName"]}:
            problems.append(f"{name}: DLQ_QUEUE_NAME is not the stack's queue")
    return problems


def check_schedule(template: Template) -> list[str]:
    """The schedule sends what a manual invocation sends: a GenerateRequest."""
    problems = []
    accepted = set(GenerateRequest.model_fields)
    schedules = 0
    for name, props in functions(template).items():
        for event_name, event in (props.get("Events") or {}).items():
            if event.get("Type") not in {"Schedule", "ScheduleV2"}:
                continue
            schedules += 1
            if Path(str(props.get("CodeUri"))).name != "generate_orders":
                problems.append(f"{name}.{event_name}: a schedule on another function than generate_orders")
            try:
                payload = json.loads(resolve_sub(template, event["Properties"].get("Input", "{}")))
            except json.JSONDecodeError as exc:
                problems.append(f"{name}.{event_name}: Input is not JSON: {exc}")
                continue
            if not isinstance(payload, dict) or not set(payload) <= accepted:
                problems.append(f"{name}.{event_name}: Input keys {sorted(payload)} are not in {sorted(accepted)}")
                continue
            try:
                GenerateRequest.model_validate(payload)
            except ValidationError as exc:
                problems.append(f"{name}.{event_name}: the generator refuses the Input: {exc}")
    if schedules != 1:
        problems.append(f"expected one schedule, found {schedules}")
    return problems


def check_kafka(template: Template) -> list[str]:
    """One event source mapping per KafkaMode, into ingest_order, with the local trigger's defaults."""
    problems = []
    defaults = Settings.model_construct()
    resources = template["Resources"]
    mappings = {n: r for n, r in resources.items() if r["Type"] == "AWS::Lambda::EventSourceMapping"}
    conditions = template.get("Conditions", {})
    modes = set(template["Parameters"]["KafkaMode"]["AllowedValues"])
    covered = set()
    for name, mapping in mappings.items():
        props = mapping["Properties"]
        condition = conditions.get(mapping.get("Condition", ""), {})
        covered |= {v for v in condition.get("Fn::Equals", []) if isinstance(v, str)}
        target = props.get("FunctionName", {}).get("Ref")
        if target not in functions(template) or Path(functions(template)[target]["CodeUri"]).name != "ingest_order":
            problems.append(f"{name}: does not invoke ingest_order")
        if props.get("Topics") != [{"Ref": "KafkaTopic"}]:
            problems.append(f"{name}: does not read the KafkaTopic parameter")
        if props.get("StartingPosition") != "TRIM_HORIZON":
            problems.append(f"{name}: does not start at TRIM_HORIZON")
        failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if failure != {"Fn::GetAtt": ["OrdersDeadLetterQueue", "Arn"]}:
            problems.append(f"{name}: failed batches do not go to the dead-letter queue")
        # The handler returns batchItemFailures instead of raising: ignored, they would be lost.
        if props.get("FunctionResponseTypes") != ["ReportBatchItemFailures"] or "ProvisionedPollerConfig" not in props:
            problems.append(f"{name}: batchItemFailures ignored (ReportBatchItemFailures in provisioned mode)")
    if covered != modes:
        problems.append(f"KafkaMode values {sorted(modes)}, mappings conditioned on {sorted(covered)}")
    if parameter_default(template, "KafkaTopic") != defaults.kafka_topic:
        problems.append("KafkaTopic default is not Settings' kafka_topic")
    if int(parameter_default(template, "IngestBatchSize")) != defaults.trigger_batch_size:
        problems.append("IngestBatchSize default is not the local trigger's batch size")
    return problems


def check_layer(template: Template) -> list[str]:
    """The layer is built by `sam build` from a requirements.txt naming this repository with the functions
    extra (the functions' modules import functions_framework), for the functions' runtime."""
    problems = []
    layers = {n: r for n, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::LayerVersion"}
    if len(layers) != 1:
        return [f"expected one layer, found {sorted(layers)}"]
    ((name, layer),) = layers.items()
    if template.get("Globals", {}).get("Function", {}).get("Layers") != [{"Ref": name}]:
        problems.append(f"the functions do not use {name}")
    if layer.get("Metadata", {}).get("BuildMethod") != RUNTIME:
        problems.append(f"{name}: BuildMethod is not {RUNTIME}")
    if RUNTIME not in layer["Properties"].get("CompatibleRuntimes", []):
        problems.append(f"{name}: not compatible with {RUNTIME}")
    requirements = ROOT / str(layer["Properties"]["ContentUri"]) / "requirements.txt"
    if not requirements.is_file():
        problems.append(f"{name}: {requirements.relative_to(ROOT)} does not exist (sam build would ship no package)")
    else:
        lines = [ln.split("#")[0].strip() for ln in requirements.read_text().splitlines()]
        # pip resolves a path in a requirements file from where it runs: `sam build` at the repository root.
        if ".[functions]" not in lines:
            problems.append(f"{name}: {requirements.relative_to(ROOT)} does not name `.[functions]`")
    return problems


def check_get_order_url(template: Template) -> list[str]:
    props = functions(template).get("GetOrder", {})
    url = props.get("FunctionUrlConfig", {})
    problems = []
    if url.get("AuthType") != "NONE":
        problems.append("GetOrder: the function URL is not public (AuthType NONE)")
    if url.get("Cors", {}).get("AllowOrigins") != [{"Ref": "CorsAllowOrigin"}]:
        problems.append("GetOrder: CORS origins are not the CorsAllowOrigin parameter")
    if function_environment(template, "GetOrder").get("CORS_ALLOW_ORIGINS") != {"Ref": "CorsAllowOrigin"}:
        problems.append("GetOrder: CORS_ALLOW_ORIGINS is not the CorsAllowOrigin parameter")
    outputs = json.dumps(template.get("Outputs", {}))
    for needed in ("GetOrderUrl.FunctionUrl", "OrdersDeadLetterQueue", "GetOrder", "IngestOrder", "GenerateOrders"):
        if needed not in outputs:
            problems.append(f"Outputs: nothing about {needed}")
    return problems


def all_problems(template: Template) -> list[str]:
    return [
        *check_functions(template),
        *check_environment(template),
        *check_schedule(template),
        *check_kafka(template),
        *check_layer(template),
        *check_get_order_url(template),
    ]


# ------------------------------------------------------------------------------------------ tests


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


def test_cfn_lint_finds_nothing() -> None:
    assert lint_errors(lint_file(TEMPLATE_FILE)) == []


def test_cfn_lint_fails_on_a_broken_template() -> None:
    text = TEMPLATE_FILE.read_text().replace("Runtime: python3.12", "Runtime: python2.7", 1)
    text = text.replace("Handler: main.handler", "Handlr: main.handler", 1)
    errors = lint_errors(lint(text, config=ManualArgs(regions=["us-east-1"])))
    assert any("python2.7" in e for e in errors), errors
    assert any("Handlr" in e for e in errors), errors


def test_functions_deploy_the_procfile_functions(template: Template) -> None:
    assert check_functions(template) == []


def test_environment_is_settings_fields(template: Template) -> None:
    assert check_environment(template) == []


def test_schedule_input_is_a_generator_request(template: Template) -> None:
    assert check_schedule(template) == []


def test_kafka_event_source_mappings(template: Template) -> None:
    assert check_kafka(template) == []


def test_shared_layer_is_built_from_the_package(template: Template) -> None:
    assert check_layer(template) == []


def test_lookup_url_and_outputs(template: Template) -> None:
    assert check_get_order_url(template) == []


# --------------------------------------------------------------------- the checks can fail (mutations)


def _function(name: str, **props: Any) -> Callable[[Template], None]:
    def mutate(t: Template) -> None:
        t["Resources"][name]["Properties"].update(props)

    return mutate


def _global_env(var: str, value: Any) -> Callable[[Template], None]:
    def mutate(t: Template) -> None:
        t["Globals"]["Function"]["Environment"]["Variables"][var] = value

    return mutate


def _schedule_input(value: str) -> Callable[[Template], None]:
    def mutate(t: Template) -> None:
        t["Resources"]["GenerateOrders"]["Properties"]["Events"]["Schedule"]["Properties"]["Input"] = value

    return mutate


def _drop_resource(name: str) -> Callable[[Template], None]:
    def mutate(t: Template) -> None:
        del t["Resources"][name]

    return mutate


def _mapping(name: str, **props: Any) -> Callable[[Template], None]:
    def mutate(t: Template) -> None:
        t["Resources"][name]["Properties"].update(props)

    return mutate


MUTATIONS: dict[str, tuple[Callable[[Template], None], str]] = {
    "missing folder": (_function("GetOrder", CodeUri="functions/lookup/"), "functions/lookup/main.py does not exist"),
    "other handler": (_function("IngestOrder", Handler="main.lambda_handler"), "defines no 'lambda_handler'"),
    "http entry as handler": (_function("IngestOrder", Handler="main.http_entry"), "cannot take (event, context)"),
    "other runtime": (_function("GenerateOrders", Runtime="python3.11"), "runtime is not python3.12"),
    "unknown variable": (_global_env("DATABASE_URL", "postgres://x"), "DATABASE_URL is not a Settings field"),
    "reserved variable": (_global_env("AWS_REGION", "eu-west-1"), "AWS_REGION is reserved by Lambda"),
    "local endpoint": (_global_env("AWS_ENDPOINT_URL", "http://localhost:4566"), "AWS_ENDPOINT_URL must be empty"),
    "other queue": (_global_env("DLQ_QUEUE_URL", "https://sqs/other"), "DLQ_QUEUE_URL is not the stack's queue"),
    "unknown input key": (_schedule_input('{"number": 5}'), "Input keys ['number']"),
    "refused input": (_schedule_input('{"count": 0}'), "the generator refuses the Input"),
    "input not json": (_schedule_input("count=5"), "Input is not JSON"),
    "no msk mapping": (_drop_resource("IngestOrderMskMapping"), "mappings conditioned on ['SelfManaged']"),
    "mapping into another function": (
        _mapping("IngestOrderSelfManagedKafkaMapping", FunctionName={"Ref": "GetOrder"}),
        "does not invoke ingest_order",
    ),
    "mapping from latest": (_mapping("IngestOrderMskMapping", StartingPosition="LATEST"), "TRIM_HORIZON"),
    "mapping without dlq": (_mapping("IngestOrderMskMapping", DestinationConfig={}), "dead-letter queue"),
    "mapping ignoring partial failures": (
        _mapping("IngestOrderSelfManagedKafkaMapping", FunctionResponseTypes=[]),
        "batchItemFailures ignored",
    ),
    "private url": (_function("GetOrder", FunctionUrlConfig={"AuthType": "AWS_IAM"}), "not public"),
    "layer elsewhere": (
        lambda t: t["Resources"]["SharedLayer"]["Properties"].update(ContentUri="nowhere/"),
        "nowhere/requirements.txt does not exist",
    ),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_checks_catch_a_broken_template(name: str, template: Template) -> None:
    mutate, expected = MUTATIONS[name]
    broken = copy.deepcopy(template)
    mutate(broken)
    problems = all_problems(broken)
    assert any(expected in problem for problem in problems), problems
