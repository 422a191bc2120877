"""Stateful resources keep their logical ids: CloudFormation replaces a resource whose id
changes. These are the ids each stage deployed before the stacks were composed of constructs
(compared with ``python -m checks.logical_ids``); a refactoring that moves one must pin it back
(``constructs/logical_ids.pin``, or a ``Default`` construct id)."""

from __future__ import annotations

import pytest

from checks.logical_ids import stateful_ids

FUNCTION_IDS = {  # each function's log group and dead-letter queue
    "StartEtl": ("StartEtlLogsLogGroup23A8C6E6", "StartEtlDeadLetterQueue24377DDD"),
    "StartTraining": ("StartTrainingLogsLogGroupEFD8D67B", "StartTrainingDeadLetterQueue13061B82"),
    "RegisterModel": ("RegisterModelLogsLogGroupA2686DD4", "RegisterModelDeadLetterQueueFAC07E13"),
    "StartBatchTransform": ("StartBatchTransformLogsLogGroup7CD0905D", "StartBatchTransformDeadLetterQueue5AADA4BF"),
    "DeployModel": ("DeployModelLogsLogGroup28E04ACE", "DeployModelDeadLetterQueueC792C3F7"),
    "CheckDrift": ("CheckDriftLogsLogGroupF9A0D199", "CheckDriftDeadLetterQueue3B4FDC61"),
}
GROUPS = [f"ModelPackageGroup{name}" for name in ("bankmarketing", "carevaluation", "vertebralcolumn", "winequality")]
PINNED = {
    "data": {
        "PlatformKey9FD66B6F",
        "AccessLogsBucketCD784A59",
        "DataBucketE6B0FAA8",
        "ArtifactsBucket88671897",
        "TrailLogsLogGroupD6F073AB",
        "OperatorTopic1876606E",
    },
    "network": {"Vpc8378EB38", "FlowLogsLogGroup9853A85F"},
    # start_etl's queue, which holds raw uploads for the quiet period (added with it, never moved)
    "etl": {
        "Database",
        "SecurityConfiguration",
        "NetworkConnection",
        *FUNCTION_IDS["StartEtl"],
        "StartEtlQueueC389720C",
    },
    "training": {
        *GROUPS,
        *FUNCTION_IDS["StartTraining"],
        *FUNCTION_IDS["RegisterModel"],
        *FUNCTION_IDS["StartBatchTransform"],
    },
    # deploy_model's queue, which holds approvals through a rollout (added with it, never moved)
    "hosting-bank-marketing": {
        "Endpoint",
        *FUNCTION_IDS["DeployModel"],
        "DeployModelQueue03388A95",
        *FUNCTION_IDS["CheckDrift"],
    },
    "monitoring": set(),  # a dashboard and a budget: nothing that holds data
}
STUDIO = {"dev": {"Domain", "Useralice", "Userbob"}, "prod": {"Domain"}}


@pytest.mark.parametrize("stage_name", ["dev", "prod"])
def test_every_stateful_resource_keeps_its_logical_id(stage_name, request):
    stage = request.getfixturevalue(stage_name)
    expected = {**PINNED, "studio": STUDIO[stage_name]}
    if not stage.config.data.trail_to_cloudwatch_logs:  # the trail's log group exists only where the stage sends it
        expected["data"] = expected["data"] - {"TrailLogsLogGroupD6F073AB"}
    found = {name: set(stateful_ids(template.to_json())) for name, template in stage.templates.items()}
    assert found == expected


def test_a_production_stage_retains_its_registry(prod, dev):
    for stage, policy in ((prod, "Retain"), (dev, None)):
        groups = stage.templates["training"].find_resources("AWS::SageMaker::ModelPackageGroup")
        assert {g.get("DeletionPolicy") for g in groups.values()} == {policy}
