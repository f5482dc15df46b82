"""template.yaml (AWS SAM) lints clean, agrees with the code it deploys and with the local stack, and deploys
what each Kafka mode needs: every mode's parameters go through AWS's SAM translator and cfn-lint, then the
tests read what that deployment would create."""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
from typing import Any

import pytest
from cfnlint.api import lint, lint_file
from cfnlint.decode import cfn_yaml

from devstack import ROOT
from devstack.services import procfile
from orders_core.config import Settings
from orders_core.generator.producer import GenerateRequest
from orders_core.http.api import ORDER_CACHE_CONTROL
from orders_local.scheduler import parse_schedule
from tests.support import cloudformation as cf

TEMPLATE_FILE = ROOT / "template.yaml"

Template = dict[str, Any]

SUBNETS = [f"subnet-{n:017x}" for n in range(1, 17)]
GROUPS = [f"sg-{n:017x}" for n in range(1, 6)]
MSK_CLUSTER = f"arn:aws:kafka:{cf.REGION}:{cf.ACCOUNT}:cluster/orders/5a1b2c3d-4e5f-6789-abcd-ef0123456789-2"
MSK_TOPIC = f"arn:aws:kafka:{cf.REGION}:{cf.ACCOUNT}:topic/orders/5a1b2c3d-4e5f-6789-abcd-ef0123456789-2/orders"
MSK_GROUP = f"arn:aws:kafka:{cf.REGION}:{cf.ACCOUNT}:group/orders/5a1b2c3d-4e5f-6789-abcd-ef0123456789-2/orders-ingest"
KAFKA_SECRET = f"arn:aws:secretsmanager:{cf.REGION}:{cf.ACCOUNT}:secret:AmazonMSK_orders-AbCdEf"
ROOT_CA_SECRET = f"arn:aws:secretsmanager:{cf.REGION}:{cf.ACCOUNT}:secret:orders-kafka-root-ca-AbCdEf"
SECRET_KEY = f"arn:aws:kms:{cf.REGION}:{cf.ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ALARM_TOPIC = f"arn:aws:sns:{cf.REGION}:{cf.ACCOUNT}:orders-alarms"

NETWORK = {
    "DbHost": "orders.cluster-c1a2b3.eu-west-1.rds.amazonaws.com",
    "SubnetIds": SUBNETS[:3],
    "SecurityGroupIds": GROUPS[:2],
}
# The deployments docs/deploying.md walks through, one a Kafka mode.
MODES: dict[str, dict[str, Any]] = {
    "default": {**NETWORK, "KafkaBootstrapServers": "kafka-1.internal:9092,kafka-2.internal:9092"},
    "msk-iam": {
        **NETWORK,
        "KafkaMode": "MSK",
        "KafkaAuthMode": "IAM",
        "MskClusterArn": MSK_CLUSTER,
        "KafkaBootstrapServers": "b-1.orders.kafka.eu-west-1.amazonaws.com:9098",
    },
    "msk-scram": {
        **NETWORK,
        "KafkaMode": "MSK",
        "KafkaAuthMode": "SCRAM512",
        "MskClusterArn": MSK_CLUSTER,
        "KafkaSecretArn": KAFKA_SECRET,
        "KafkaSecretKmsKeyArn": SECRET_KEY,
        "KafkaBootstrapServers": "b-1.orders.kafka.eu-west-1.amazonaws.com:9096",
    },
    "self-managed-scram": {
        **NETWORK,
        "KafkaAuthMode": "SCRAM256",
        "KafkaSecretArn": KAFKA_SECRET,
        "KafkaBootstrapServers": "kafka-1.internal:9093,kafka-2.internal:9093",
    },
    "self-managed-mtls": {
        **NETWORK,
        "KafkaAuthMode": "MTLS",
        "KafkaSecretArn": KAFKA_SECRET,
        "KafkaRootCaSecretArn": ROOT_CA_SECRET,
        "KafkaBootstrapServers": "kafka-1.internal:9094,kafka-2.internal:9094",
    },
    "lookup-behind-cloudfront": {
        **NETWORK,
        "KafkaBootstrapServers": "kafka-1.internal:9092",
        "LookupUrlAuth": "AWS_IAM",
        "LookupCloudFront": "true",
        "LookupReservedConcurrency": "20",
        "AlarmTopicArn": ALARM_TOPIC,
    },
}


@pytest.fixture(scope="module")
def template() -> Template:
    loaded = cfn_yaml.load(str(TEMPLATE_FILE))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def translated() -> Template:
    return cf.translate(cf.load(TEMPLATE_FILE))


@pytest.fixture
def deploy(translated: Template) -> Any:
    def with_parameters(mode: str, **overrides: Any) -> cf.Deployment:
        return cf.Deployment(translated, {**MODES[mode], **overrides})

    return with_parameters


def resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {name: r.get("Properties", {}) for name, r in template["Resources"].items() if r["Type"] == kind}


def resolve(template: Template, value: Any) -> Any:
    """A ``Ref`` to a parameter, or a ``Fn::Sub`` of parameters, with the parameters' defaults."""
    if isinstance(value, dict) and "Ref" in value:
        return template["Parameters"][value["Ref"]]["Default"]
    if isinstance(value, dict) and "Fn::Sub" in value:
        return re.sub(r"\$\{(\w+)\}", lambda m: str(resolve(template, {"Ref": m.group(1)})), value["Fn::Sub"])
    return value


def allowed(deployment: cf.Deployment, role: str) -> dict[str, set[str]]:
    """Every action a role's inline policies allow, with the resources it is allowed on."""
    actions: dict[str, set[str]] = {}
    for policy in deployment.resources()[role]["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            names = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            for name in names:
                actions.setdefault(name, set()).update(json.dumps(t) if isinstance(t, dict) else t for t in targets)
    return actions


def mapping(deployment: cf.Deployment) -> dict[str, Any]:
    (only,) = deployment.of_type("AWS::Lambda::EventSourceMapping").values()
    return only


def authentication(deployment: cf.Deployment) -> list[tuple[str, str]]:
    """The mapping's source access configurations other than its network."""
    entries = mapping(deployment).get("SourceAccessConfigurations", [])
    return [(e["Type"], e["URI"]) for e in entries if e["Type"] not in {"VPC_SUBNET", "VPC_SECURITY_GROUP"}]


def errors(matches: list[Any]) -> list[str]:
    return [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches if m.rule.id[0] in "EW"]


# ------------------------------------------------------------------------------------------- the template


def test_cfn_lint_finds_nothing() -> None:
    assert errors(lint_file(TEMPLATE_FILE)) == []


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_passes_the_rules_and_cfn_lint_once_translated_and_resolved(deploy: Any, mode: str) -> None:
    """What CloudFormation would create with this mode's parameters, linted as a plain template."""
    deployment = deploy(mode)
    assert deployment.broken_rules() == []
    assert errors(lint(json.dumps(deployment.resolved_template()))) == []


@pytest.mark.parametrize(
    ("parameters", "refused_because"),
    [
        ({"KafkaAuthMode": "IAM"}, "for Amazon MSK only"),
        (
            {
                "KafkaMode": "MSK",
                "MskClusterArn": MSK_CLUSTER,
                "KafkaAuthMode": "PLAIN",
                "KafkaSecretArn": KAFKA_SECRET,
            },
            "need SelfManaged",
        ),
        ({"KafkaAuthMode": "SCRAM512"}, "need KafkaSecretArn"),
        ({"KafkaMode": "MSK"}, "needs MskClusterArn"),
        ({**MODES["msk-scram"], "KafkaSecretKmsKeyArn": ""}, "customer managed key"),
        ({"KafkaMode": "MSK", "MskClusterArn": MSK_CLUSTER, "KafkaRootCaSecretArn": ROOT_CA_SECRET}, "SelfManaged"),
        ({"LookupCloudFront": "true"}, "needs LookupUrlAuth AWS_IAM"),
    ],
)
def test_rules_refuse_what_the_platform_would_refuse_later(
    deploy: Any, parameters: dict[str, Any], refused_because: str
) -> None:
    """A combination the event source mapping or CloudFront cannot take fails before anything is created."""
    (broken,) = deploy("default", **parameters).broken_rules()
    assert refused_because in broken


def test_each_deployed_function_is_a_procfile_function_whose_handler_takes_event_and_context(
    template: Template,
) -> None:
    """Except the custom resource's: locally orders-setup provisions, before the functions start."""
    functions = resources(template, "AWS::Serverless::Function")
    service_tokens = {
        props["ServiceToken"]["Fn::GetAtt"][0]
        for name, resource in template["Resources"].items()
        if resource["Type"].startswith("Custom::")
        for props in [resource["Properties"]]
    }
    served = {ROOT / props["CodeUri"] for name, props in functions.items() if name not in service_tokens}
    assert {folder.name for folder in served} == {
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


# ------------------------------------------------------------------------------------------- Kafka modes


@pytest.mark.parametrize("subnets", [1, 3, 16])
@pytest.mark.parametrize("groups", [1, 5])
def test_a_self_managed_mapping_uses_every_subnet_and_security_group(deploy: Any, subnets: int, groups: int) -> None:
    """Not just the first: the pollers need a subnet with room, and the brokers may allow any of the groups."""
    deployment = deploy("default", SubnetIds=SUBNETS[:subnets], SecurityGroupIds=GROUPS[:groups])
    entries = mapping(deployment)["SourceAccessConfigurations"]
    assert sorted(e["URI"] for e in entries if e["Type"] == "VPC_SUBNET") == [f"subnet:{s}" for s in SUBNETS[:subnets]]
    assert sorted(e["URI"] for e in entries if e["Type"] == "VPC_SECURITY_GROUP") == [
        f"security_group:{g}" for g in GROUPS[:groups]
    ]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("default", []),
        ("msk-iam", []),  # no secret: an MSK mapping authenticates with the function's role
        ("msk-scram", [("SASL_SCRAM_512_AUTH", KAFKA_SECRET)]),
        ("self-managed-scram", [("SASL_SCRAM_256_AUTH", KAFKA_SECRET)]),
        (
            "self-managed-mtls",
            [("CLIENT_CERTIFICATE_TLS_AUTH", KAFKA_SECRET), ("SERVER_ROOT_CA_CERTIFICATE", ROOT_CA_SECRET)],
        ),
    ],
)
def test_the_mapping_authenticates_as_the_mode_says(deploy: Any, mode: str, expected: list[tuple[str, str]]) -> None:
    assert authentication(deploy(mode)) == expected


def test_a_self_managed_plain_mapping_uses_basic_auth(deploy: Any) -> None:
    deployment = deploy("self-managed-scram", KafkaAuthMode="PLAIN")
    assert authentication(deployment) == [("BASIC_AUTH", KAFKA_SECRET)]


def test_an_msk_mapping_has_no_network_of_its_own(deploy: Any) -> None:
    """Lambda uses the cluster's subnets and security groups."""
    for mode in ("msk-iam", "msk-scram"):
        entries = mapping(deploy(mode)).get("SourceAccessConfigurations", [])
        assert {e["Type"] for e in entries} <= {"SASL_SCRAM_512_AUTH", "CLIENT_CERTIFICATE_TLS_AUTH"}


def test_with_msk_iam_each_role_may_do_what_its_function_does_on_the_cluster(deploy: Any) -> None:
    deployment = deploy("msk-iam")
    reader, writer, provisioner = (
        allowed(deployment, role) for role in ("IngestOrderRole", "GenerateOrdersRole", "ProvisionFunctionRole")
    )
    for action in ("kafka-cluster:Connect", "kafka-cluster:DescribeClusterDynamicConfiguration"):
        assert reader[action] == {MSK_CLUSTER}
    for action in ("kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"):
        assert reader[action] == {MSK_TOPIC}
    for action in ("kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"):
        assert reader[action] == {MSK_GROUP}
    assert {"kafka:DescribeClusterV2", "kafka:GetBootstrapBrokers", "ec2:CreateNetworkInterface"} <= set(reader)
    assert writer["kafka-cluster:WriteDataIdempotently"] == {MSK_CLUSTER}  # the producer is idempotent
    assert writer["kafka-cluster:WriteData"] == writer["kafka-cluster:DescribeTopic"] == {MSK_TOPIC}
    assert provisioner["kafka-cluster:CreateTopic"] == {MSK_TOPIC}
    assert "kafka-cluster:CreateTopic" not in writer
    assert "kafka-cluster:WriteData" not in reader


def test_without_msk_iam_no_role_may_use_the_cluster_api(deploy: Any) -> None:
    for mode in ("default", "msk-scram", "self-managed-scram"):
        deployment = deploy(mode)
        for role in ("IngestOrderRole", "GenerateOrdersRole", "ProvisionFunctionRole"):
            assert not any(action.startswith("kafka-cluster:") for action in allowed(deployment, role)), (mode, role)


@pytest.mark.parametrize("mode", ["msk-scram", "self-managed-scram", "self-managed-mtls"])
def test_the_kafka_clients_may_read_the_secret(deploy: Any, mode: str) -> None:
    """The mapping (as ingest_order's role), the generator and the provisioning all read it at run time."""
    deployment = deploy(mode)
    for role in ("IngestOrderRole", "GenerateOrdersRole", "ProvisionFunctionRole"):
        actions = allowed(deployment, role)
        assert KAFKA_SECRET in actions["secretsmanager:GetSecretValue"], role
        if "KafkaSecretKmsKeyArn" in MODES[mode]:
            assert actions["kms:Decrypt"] == {SECRET_KEY}, role
    if "KafkaRootCaSecretArn" in MODES[mode]:
        assert ROOT_CA_SECRET in allowed(deployment, "IngestOrderRole")["secretsmanager:GetSecretValue"]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("default", {"KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}),
        ("msk-iam", {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "OAUTHBEARER"}),
        (
            "msk-scram",
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                "KAFKA_SASL_SECRET_ARN": KAFKA_SECRET,
            },
        ),
        (
            "self-managed-scram",
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
                "KAFKA_SASL_SECRET_ARN": KAFKA_SECRET,
            },
        ),
        ("self-managed-mtls", {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_SECRET_ARN": KAFKA_SECRET}),
    ],
)
def test_the_generator_reaches_the_cluster_the_mapping_reads(
    deploy: Any, monkeypatch: pytest.MonkeyPatch, mode: str, expected: dict[str, str]
) -> None:
    """The same cluster and authentication, never a credential in the environment, and an environment the
    settings accept."""
    deployment = deploy(mode)
    environment = deployment.of_type("AWS::Lambda::Function")["GenerateOrders"]["Environment"]["Variables"]
    kafka = {
        name: value
        for name, value in environment.items()
        if name.startswith("KAFKA_SSL_")
        or name in {"KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_SECRET_ARN"}
    }
    tls = expected["KAFKA_SECURITY_PROTOCOL"] != "PLAINTEXT"
    ca = {"KAFKA_SSL_CA_LOCATION": "/etc/pki/tls/certs/ca-bundle.crt"} if tls else {}
    assert kafka == {**expected, **ca}
    assert environment["KAFKA_BOOTSTRAP_SERVERS"] == MODES[mode]["KafkaBootstrapServers"]
    assert not any("PASSWORD" in name or "KEY" in name for name in environment if name.startswith("KAFKA_"))
    for name, value in environment.items():
        if isinstance(value, str | int):
            monkeypatch.setenv(name, str(value))
    Settings()


# --------------------------------------------------------------------------------------- failures, alarms


def test_the_failed_batches_bucket_is_private_versioned_encrypted_and_tls_only(deploy: Any) -> None:
    deployment = deploy("default")
    (bucket,) = deployment.of_type("AWS::S3::Bucket").values()
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    (policy,) = deployment.of_type("AWS::S3::BucketPolicy").values()
    assert policy["Bucket"] == {"Ref": "IngestFailedBatchesBucket"}
    denials = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(
        s["Principal"] == "*" and s["Action"] == "s3:*" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in denials
    )


def test_event_source_mappings_honour_partial_failures_and_keep_what_they_give_up(template: Template) -> None:
    """Partial batch responses, retry limits and an S3 destination exist only in provisioned mode. The destination
    must keep the records (for Kafka an SQS destination gets only metadata), and unlimited retries with a
    destination become 10 retries: minutes of a database outage."""
    functions = resources(template, "AWS::Serverless::Function")
    for name, mapping_props in resources(template, "AWS::Lambda::EventSourceMapping").items():
        assert "ProvisionedPollerConfig" in mapping_props, name
        assert mapping_props["FunctionResponseTypes"] == ["ReportBatchItemFailures"], name
        bucket = mapping_props["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
        assert template["Resources"][bucket]["Type"] == "AWS::S3::Bucket", name
        policies = json.dumps(functions[mapping_props["FunctionName"]["Ref"]]["Policies"])
        assert all(needed in policies for needed in ("s3:PutObject", "s3:ListBucket", bucket)), name
        assert int(resolve(template, mapping_props["MaximumRetryAttempts"])) >= 0, name
        assert int(resolve(template, mapping_props["MaximumRecordAgeInSeconds"])) >= 0, name


def alarmed_metrics(deployment: cf.Deployment) -> dict[str, set[str]]:
    """Alarm name -> the metrics it watches."""
    watched: dict[str, set[str]] = {}
    for name, alarm in deployment.of_type("AWS::CloudWatch::Alarm").items():
        metrics = [q["MetricStat"]["Metric"] for q in alarm.get("Metrics", []) if "MetricStat" in q] or [alarm]
        watched[name] = {m["MetricName"] for m in metrics}
    return watched


def test_alarms_watch_the_failures_an_operator_must_act_on(deploy: Any) -> None:
    deployment = deploy("default")
    watched = set().union(*alarmed_metrics(deployment).values())
    assert {
        "Errors",  # ingest_order could store nothing of a batch
        "PollingErrorCount",
        "InvokeErrorCount",
        "CommitErrorCount",  # the mapping itself
        "OnFailureDestinationDeliveredEventCount",
        "DroppedEventCount",  # records given up on, kept or not
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",  # dead letters
        "Url5xxCount",
        "Throttles",  # lookups
    } <= watched


@pytest.mark.parametrize("mode", ["default", "msk-iam"])
def test_the_mapping_alarms_watch_the_mapping_this_mode_creates(deploy: Any, mode: str) -> None:
    deployment = deploy(mode)
    (mapping_name,) = deployment.of_type("AWS::Lambda::EventSourceMapping")
    for alarm in deployment.of_type("AWS::CloudWatch::Alarm").values():
        metrics = [q["MetricStat"]["Metric"] for q in alarm.get("Metrics", []) if "MetricStat" in q] or [alarm]
        for metric in metrics:
            for dimension in metric["Dimensions"]:
                if dimension["Name"] == "EventSourceMappingUUID":
                    assert dimension["Value"] == {"Ref": mapping_name}


def test_every_alarm_notifies_the_alarm_topic_when_there_is_one(deploy: Any) -> None:
    with_topic = deploy("default", AlarmTopicArn=ALARM_TOPIC).of_type("AWS::CloudWatch::Alarm")
    assert with_topic
    for name, alarm in with_topic.items():
        assert alarm["AlarmActions"] == alarm["OKActions"] == [ALARM_TOPIC], name
    for name, alarm in deploy("default").of_type("AWS::CloudWatch::Alarm").items():
        assert "AlarmActions" not in alarm and "OKActions" not in alarm, name


# ------------------------------------------------------------------------------------------------ lookups


@pytest.mark.parametrize(("value", "reserved"), [(None, None), ("", None), ("0", None), ("20", "20")])
def test_lookup_reserved_concurrency_is_off_unless_asked_for(deploy: Any, value: str | None, reserved: str) -> None:
    deployment = deploy("default", **({} if value is None else {"LookupReservedConcurrency": value}))
    assert deployment.of_type("AWS::Lambda::Function")["GetOrder"].get("ReservedConcurrentExecutions") == reserved


def url_permissions(deployment: cf.Deployment) -> list[dict[str, Any]]:
    return [
        p for p in deployment.of_type("AWS::Lambda::Permission").values() if p["FunctionName"] == {"Ref": "GetOrder"}
    ]


def test_a_public_url_may_be_invoked_by_anyone_but_only_through_the_url(deploy: Any) -> None:
    """Function URLs made since October 2025 check lambda:InvokeFunction as well as lambda:InvokeFunctionUrl."""
    permissions = url_permissions(deploy("default"))
    assert {(p["Action"], p["Principal"]) for p in permissions} == {
        ("lambda:InvokeFunctionUrl", "*"),
        ("lambda:InvokeFunction", "*"),
    }
    for permission in permissions:
        if permission["Action"] == "lambda:InvokeFunction":
            assert permission["InvokedViaFunctionUrl"] is True
        else:
            assert permission["FunctionUrlAuthType"] == "NONE"
    assert not [p for p in url_permissions(deploy("default", LookupUrlAuth="AWS_IAM")) if p["Principal"] == "*"]


def test_behind_cloudfront_only_the_distribution_may_invoke_and_it_signs_every_request(deploy: Any) -> None:
    deployment = deploy("lookup-behind-cloudfront")
    distribution_arn = {"Fn::Sub": f"arn:aws:cloudfront::{cf.ACCOUNT}:distribution/${{LookupDistribution}}"}
    permissions = url_permissions(deployment)
    assert {(p["Action"], p["Principal"], json.dumps(p["SourceArn"])) for p in permissions} == {
        ("lambda:InvokeFunctionUrl", "cloudfront.amazonaws.com", json.dumps(distribution_arn)),
        ("lambda:InvokeFunction", "cloudfront.amazonaws.com", json.dumps(distribution_arn)),
    }
    (access_control,) = deployment.of_type("AWS::CloudFront::OriginAccessControl").values()
    config = access_control["OriginAccessControlConfig"]
    assert (config["OriginAccessControlOriginType"], config["SigningBehavior"], config["SigningProtocol"]) == (
        "lambda",
        "always",
        "sigv4",
    )
    (distribution,) = deployment.of_type("AWS::CloudFront::Distribution").values()
    (origin,) = distribution["DistributionConfig"]["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["LookupOriginAccessControl", "Id"]}


def test_behind_cloudfront_orders_are_cached_only_as_the_function_allows(deploy: Any) -> None:
    """MinTTL 0: CloudFront follows the origin's Cache-Control (private for an order) instead of overriding it."""
    deployment = deploy("lookup-behind-cloudfront")
    (policy,) = deployment.of_type("AWS::CloudFront::CachePolicy").values()
    assert policy["CachePolicyConfig"]["MinTTL"] == 0
    assert policy["CachePolicyConfig"]["DefaultTTL"] == 0
    (distribution,) = deployment.of_type("AWS::CloudFront::Distribution").values()
    assert distribution["DistributionConfig"]["DefaultCacheBehavior"]["CachePolicyId"] == {"Ref": "LookupCachePolicy"}
    assert not deploy("default").of_type("AWS::CloudFront::Distribution")


def test_an_order_answer_forbids_shared_caches() -> None:
    """The other side of the cache policy: CloudFront keeps what the function calls public."""
    directives = {d.strip().split("=")[0] for d in ORDER_CACHE_CONTROL.split(",")}
    assert directives & {"private", "no-store"}


# ------------------------------------------------------------------------------- provisioning and schedule


@pytest.mark.parametrize("mode", ["default", "msk-iam"])
def test_the_mapping_starts_only_once_the_schema_and_the_topic_are_provisioned(deploy: Any, mode: str) -> None:
    deployment = deploy(mode)
    (name,) = deployment.of_type("AWS::Lambda::EventSourceMapping")
    depends_on = deployment.resources()[name]["DependsOn"]
    (provision,) = [
        n
        for n in ([depends_on] if isinstance(depends_on, str) else depends_on)
        if deployment.resources()[n]["Type"].startswith("Custom::")
    ]
    token = deployment.resources()[provision]["Properties"]["ServiceToken"]
    function = deployment.of_type("AWS::Lambda::Function")[token["Fn::GetAtt"][0]]
    assert function["Handler"] == "main.handler"
    assert function["Code"]["S3Key"].startswith("functions/provision")


def test_the_provisioning_runs_again_when_new_migrations_ship(template: Template) -> None:
    """A custom resource is updated only when its properties change: the shared layer's version is one of them."""
    (provision,) = [r for r in template["Resources"].values() if r["Type"].startswith("Custom::")]
    assert {"Ref": "SharedLayer"} in provision["Properties"].values()


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
    # What EventBridge Scheduler puts in place of its context attributes when it runs the schedule.
    context = {
        "<aws.scheduler.scheduled-time>": "2026-12-04T15:00:00Z",
        "<aws.scheduler.schedule-arn>": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/orders",
    }
    for event in events:
        text = resolve(template, event["Input"])
        for attribute, value in context.items():
            text = text.replace(attribute, value)
        GenerateRequest.model_validate(json.loads(text))


def test_a_scheduled_run_names_its_occurrence_and_is_retried_a_bounded_number_of_times(deploy: Any) -> None:
    """Scheduler fills in the context attributes; the same occurrence on every retry makes a retry harmless."""
    deployment = deploy("default")
    (schedule,) = deployment.of_type("AWS::Scheduler::Schedule").values()
    request = json.loads(schedule["Target"]["Input"])
    assert request["occurrence"] == "<aws.scheduler.scheduled-time>"
    assert request["schedule"] == "<aws.scheduler.schedule-arn>"
    (retries,) = deployment.of_type("AWS::Lambda::EventInvokeConfig").values()
    assert retries["FunctionName"] == {"Ref": "GenerateOrders"}
    assert 0 <= retries["MaximumRetryAttempts"] <= 2
    assert 60 <= retries["MaximumEventAgeInSeconds"] <= 21600


def test_event_source_mappings_batch_as_the_local_trigger_does(template: Template) -> None:
    """The trigger stands in for the platform's event source mapping: the same batch size and window."""
    defaults = Settings.model_construct()
    mappings = resources(template, "AWS::Lambda::EventSourceMapping")
    assert mappings, "no event source mapping"
    for props in mappings.values():
        assert int(resolve(template, props["BatchSize"])) == defaults.trigger_batch_size
        assert float(resolve(template, props["MaximumBatchingWindowInSeconds"])) == defaults.trigger_batch_window_s
