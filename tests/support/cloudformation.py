"""template.yaml as a deployment would see it, without AWS: AWS's own SAM translator expands the serverless
resources, then the parameter values of one deployment decide the conditions, the rules and the intrinsic
functions over parameters, as CloudFormation would. References to resources stay references."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import boto3
from cfnlint.decode import cfn_yaml
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

REGION = "eu-west-1"
ACCOUNT = "123456789012"
PARTITION = "aws"

Template = dict[str, Any]


def load(path: Path) -> Template:
    loaded = cfn_yaml.load(str(path))
    assert isinstance(loaded, dict)
    plain: Template = json.loads(json.dumps(loaded))  # plain dicts and strings, as the translator expects
    return plain


def translate(template: Template) -> Template:
    """The SAM translator's CloudFormation; local code folders stand in as S3 locations, as `sam package`
    would make them."""
    template = copy.deepcopy(template)
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://artifacts/{properties[key]}"
    # The region is the translator's only question to the environment; the template names no managed policy.
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    translated = translator.translate(template, parameter_values={}, get_managed_policy_map=dict)
    assert isinstance(translated, dict)
    return translated


class _NoValue:
    """AWS::NoValue: the key or list item that holds it is left out."""


NO_VALUE = _NoValue()


class Deployment:
    """One deployment of a (translated) template with these parameter values."""

    def __init__(self, template: Template, parameters: dict[str, Any]) -> None:
        self.template = template
        unknown = set(parameters) - set(template["Parameters"])
        assert not unknown, f"not parameters of the template: {unknown}"
        self.parameters: dict[str, Any] = {
            name: parameters.get(name, spec.get("Default")) for name, spec in template["Parameters"].items()
        }
        missing = [name for name, value in self.parameters.items() if value is None]
        assert not missing, f"parameters without a value or a default: {missing}"
        for name, spec in template["Parameters"].items():
            if spec["Type"].startswith("List<") and isinstance(self.parameters[name], str):
                self.parameters[name] = self.parameters[name].split(",")
        self._conditions: dict[str, bool] = {}

    # ---------------------------------------------------------------------------------------- conditions

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self._evaluate(self.template["Conditions"][name]))
        return self._conditions[name]

    def broken_rules(self) -> list[str]:
        """AssertDescription of every rule assertion these parameters break."""
        broken = []
        for rule in self.template.get("Rules", {}).values():
            if "RuleCondition" in rule and not self._evaluate(rule["RuleCondition"]):
                continue
            broken += [a["AssertDescription"] for a in rule["Assertions"] if not self._evaluate(a["Assert"])]
        return broken

    # ----------------------------------------------------------------------------------------- resources

    def resources(self) -> dict[str, dict[str, Any]]:
        """Every resource this deployment creates, its properties resolved."""
        return {
            name: self.resolve(resource)
            for name, resource in self.template["Resources"].items()
            if "Condition" not in resource or self.condition(resource["Condition"])
        }

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: r.get("Properties", {}) for name, r in self.resources().items() if r["Type"] == kind}

    def resolved_template(self) -> Template:
        """A plain CloudFormation template of what is deployed (for cfn-lint)."""
        outputs = {
            name: self.resolve(output)
            for name, output in self.template.get("Outputs", {}).items()
            if "Condition" not in output or self.condition(output["Condition"])
        }
        resources = {name: {k: v for k, v in r.items() if k != "Condition"} for name, r in self.resources().items()}
        for output in outputs.values():
            output.pop("Condition", None)
        return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources, "Outputs": outputs}

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function over parameters and conditions worked out."""
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref" or key.startswith("Fn::") or (key == "Condition" and isinstance(argument, str)):
                return self._evaluate(value)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    # ----------------------------------------------------------------------------------------- functions

    def _evaluate(self, value: Any) -> Any:
        if not isinstance(value, dict) or len(value) != 1:
            return self.resolve(value)
        ((key, argument),) = value.items()
        if key == "Ref":
            return self._ref(argument)
        if key == "Condition":
            return self.condition(argument)
        if key == "Fn::If":
            name, then, otherwise = argument
            return self.resolve(then if self.condition(name) else otherwise)
        if key == "Fn::Equals":
            left, right = (self.resolve(a) for a in argument)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self._evaluate(argument[0])
        if key == "Fn::And":
            return all(self._evaluate(a) for a in argument)
        if key == "Fn::Or":
            return any(self._evaluate(a) for a in argument)
        if key == "Fn::Contains":
            options, candidate = (self.resolve(a) for a in argument)
            return candidate in options
        if key == "Fn::FindInMap":
            mapping, top, second = (self.resolve(a) for a in argument)
            return self.template["Mappings"][mapping][top][second]
        if key == "Fn::Sub":
            return self._sub(argument)
        resolved = self.resolve(argument)
        if _unresolved(resolved):
            return {key: resolved}  # over a resource's attribute: CloudFormation's business
        if key == "Fn::Join":
            separator, items = resolved
            return separator.join(str(item) for item in items)
        if key == "Fn::Split":
            separator, text = resolved
            return text.split(separator)
        if key == "Fn::Select":
            index, items = resolved
            return items[int(index)]
        return {key: resolved}  # Fn::GetAtt and the like

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::NoValue": NO_VALUE,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": PARTITION,
            "AWS::StackName": "orders",
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/orders/1",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return {"Ref": name}

    def _sub(self, argument: Any) -> Any:
        """The text with what is known substituted; an ``Fn::Sub`` of the rest when a resource is named."""
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        variables = {name: self.resolve(v) for name, v in variables.items()}
        left: dict[str, Any] = {}

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            found = variables[name] if name in variables else self._ref(name) if "." not in name else None
            if found is None or _unresolved(found):
                if name in variables:
                    left[name] = found
                return match.group(0)
            return str(found)

        substituted = re.sub(r"\$\{([\w:.]+)\}", value, text)
        if "${" not in substituted:
            return substituted
        return {"Fn::Sub": [substituted, left] if left else substituted}


def _unresolved(value: Any) -> bool:
    if isinstance(value, dict):
        return True
    if isinstance(value, list):
        return any(_unresolved(item) for item in value)
    return False
