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


@jsii.implements(events.IRuleTarget)
class TopicTarget:
    def __init__(self, topic: sns.ITopic, message: events.RuleTargetInput) -> None:
        self.topic = topic
        self.message = message

    def bind(self, _rule: events.IRule, _id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self.topic.topic_arn, input=self.message)
