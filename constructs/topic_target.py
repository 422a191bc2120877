"""TopicTarget: an EventBridge rule target that publishes to an SNS topic through its topic policy.

CDK's ``targets.SnsTopic`` grants the events service on the topic (and on its KMS key, without a
condition) or, given a role, puts the role on the target. EventBridge delivers to SNS through
the topic's resource policy only; a role on an SNS target can make delivery fail, above all to
an encrypted topic. https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html
The topic's policy and its key's policy grant EventBridge of this account (stacks/data.py).
"""

from __future__ import annotations

import jsii
from aws_cdk import aws_events as events
from aws_cdk import aws_sns as sns
from aws_cdk.interfaces.aws_events import IRuleRef
from constructs import Construct


@jsii.implements(events.IRuleTarget)
class TopicTarget:
    def __init__(self, topic: sns.ITopic, message: events.RuleTargetInput) -> None:
        self.topic = topic
        self.message = message

    def bind(self, rule: IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self.topic.topic_arn, input=self.message)


def notify(
    scope: Construct,
    construct_id: str,
    *,
    topic: sns.ITopic,
    description: str,
    event_pattern: events.EventPattern,
    message: str,
) -> events.Rule:
    """An EventBridge rule that tells ``topic`` ``message`` (with ``EventField`` placeholders)
    whenever an event matches ``event_pattern``."""
    rule = events.Rule(scope, construct_id, description=description, event_pattern=event_pattern)
    rule.add_target(TopicTarget(topic, message=events.RuleTargetInput.from_text(message)))
    return rule
