"""template.yaml (AWS SAM) lints clean and agrees with the code it deploys and with the local stack."""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
from typing import Any

import pytest
from cfnlint.api import lint_file
from cfnlint.decode import cfn_yaml

from devstack import ROOT
from devstack.services import procfile
from orders_core.config import Settings
from orders_core.generator.producer import GenerateRequest
from orders_local.scheduler import parse_schedule

TEMPLATE_FILE = ROOT / "template.yaml"

Template = dict[str, Any]


@pytest.fixture(scope="module")
def template() -> Template:
    loaded = cfn_yaml.load(str(TEMPLATE_FILE))
    assert isinstance(loaded, dict)
    return loaded


def resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {name: r.get("Properties", {}) for name, r in template["Resources"].items() if r["Type"] == kind}


def resolve(template: Template, value: Any) -> Any:
    """A ``Ref`` to a parameter, or a ``Fn::Sub`` of parameters, with the parameters' defaults."""
    if isinstance(value, dict) and "Ref" in value:
        return template["Parameters"][value["Ref"]]["Default"]
    if isinstance(value, dict) and "Fn::Sub" in value:
        return re.sub(r"\$\{(\w+)\}", lambda m: str(resolve(template, {"Ref": m.group(1)})), value["Fn::Sub"])
    return value


def test_cfn_lint_finds_nothing() -> None:
    errors = [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in lint_file(TEMPLATE_FILE)]
    assert [e for e in errors if e[0] in "EW"] == []


def test_each_deployed_function_is_a_procfile_function_whose_handler_takes_event_and_context(
    template: Template,
) -> None:
    functions = resources(template, "AWS::Serverless::Function")
    folders = {ROOT / props["CodeUri"] for props in functions.values()}
    assert {folder.name for folder in folders} == {
        name for name, command in procfile().items() if "function.sh" in command
    }
    for name, props in functions.items():
        module_name, _, attribute = props["Handler"].rpartition(".")
        spec = importlib.util.spec_from_file_location(f"{name}_main", ROOT / props["CodeUri"] / f"{module_name}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        inspect.signature(getattr(module, attribute)).bind({"event": "of the platform"}, object())


def test_function_environment_names_are_settings_fields(template: Template) -> None:
    names = set(template["Globals"]["Function"]["Environment"]["Variables"])
    for props in resources(template, "AWS::Serverless::Function").values():
        names |= set(props.get("Environment", {}).get("Variables", {}))
    assert names - Settings.environment_names() == set()


def test_schedule_expression_is_one_the_local_scheduler_runs(template: Template) -> None:
    parse_schedule(str(resolve(template, {"Ref": "ScheduleExpression"})))


def test_schedule_input_is_a_generator_request(template: Template) -> None:
    events = [
        event["Properties"]
        for props in resources(template, "AWS::Serverless::Function").values()
        for event in props.get("Events", {}).values()
        if event["Type"] in {"Schedule", "ScheduleV2"}
    ]
    assert events, "no schedule"
    for event in events:
        GenerateRequest.model_validate(json.loads(resolve(template, event["Input"])))


def test_event_source_mappings_batch_as_the_local_trigger_does(template: Template) -> None:
    """The trigger stands in for the platform's event source mapping: the same batch size and window."""
    defaults = Settings.model_construct()
    mappings = resources(template, "AWS::Lambda::EventSourceMapping")
    assert mappings, "no event source mapping"
    for props in mappings.values():
        assert int(resolve(template, props["BatchSize"])) == defaults.trigger_batch_size
        assert float(resolve(template, props["MaximumBatchingWindowInSeconds"])) == defaults.trigger_batch_window_s


def test_event_source_mappings_honour_partial_failures_and_keep_what_they_give_up(template: Template) -> None:
    """Partial batch responses, retry limits and an S3 destination exist only in provisioned mode. The destination
    must keep the records (for Kafka an SQS destination gets only metadata), and unlimited retries with a
    destination become 10 retries: minutes of a database outage."""
    functions = resources(template, "AWS::Serverless::Function")
    for name, mapping in resources(template, "AWS::Lambda::EventSourceMapping").items():
        assert "ProvisionedPollerConfig" in mapping, name
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"], name
        bucket = mapping["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
        assert template["Resources"][bucket]["Type"] == "AWS::S3::Bucket", name
        policies = json.dumps(functions[mapping["FunctionName"]["Ref"]]["Policies"])
        assert all(needed in policies for needed in ("s3:PutObject", "s3:ListBucket", bucket)), name
        assert int(resolve(template, mapping["MaximumRetryAttempts"])) >= 0, name
        assert int(resolve(template, mapping["MaximumRecordAgeInSeconds"])) >= 0, name
