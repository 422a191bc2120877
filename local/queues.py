"""The twin's path from an EventBridge rule through an SQS queue to a Lambda function.

- A rule's SQS target: EventBridge sends the event's JSON as the message body (SendMessage, as
  events.amazonaws.com) (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html).
- The queue holds a new message for its DelaySeconds
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-delay-queues.html)
  and a received one for its VisibilityTimeout; moto moves a message received maxReceiveCount
  times to the queue's dead-letter queue (RedrivePolicy) on the receive after that.
- Lambda's event source mapping (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html)
  polls with the function's execution role (ReceiveMessage, up to BatchSize messages), invokes
  the function synchronously with the batch, and deletes the messages it handled. With
  ReportBatchItemFailures, the messages the response names stay to come back after the
  visibility timeout; a response that names a message not in the batch, or a function error,
  fails the whole batch.

The twin keeps no wall clock: delays and visibility timeouts run on its own clock
(``Twin.clock``), which moves to the next timer when nothing else is pending. moto times
messages by the wall clock, so the twin clears moto's timer on a message once the twin's is over.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from local import events
from local.trace import acting_as

if TYPE_CHECKING:
    from local.platform import Twin


@dataclass(frozen=True)
class SourceMapping:
    """An event source mapping from a queue to a function (AWS::Lambda::EventSourceMapping)."""

    queue_arn: str
    function: str  # name or ARN
    batch_size: int
    report_failures: bool
    enabled: bool


@dataclass(frozen=True)
class Queue:
    arn: str
    name: str
    url: str
    delay: int
    visibility: int


class Queues:
    def __init__(self, twin: Twin) -> None:
        self.twin = twin
        self.mappings: list[SourceMapping] = []
        self._until: dict[tuple[str, str], float] = {}  # (queue, message id) -> twin time it is hidden until

    def add_mapping(self, properties: Mapping[str, Any]) -> None:
        arn = properties["EventSourceArn"]
        if ":sqs:" not in arn:
            raise ValueError(f"event source {arn}: the twin polls SQS queues only")
        self.mappings.append(
            SourceMapping(
                queue_arn=arn,
                function=properties["FunctionName"],
                batch_size=int(properties.get("BatchSize", 10)),
                report_failures="ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []),
                enabled=properties.get("Enabled", True) not in (False, "false"),
            )
        )

    def queue(self, arn: str) -> Queue:
        name = arn.rsplit(":", 1)[-1]
        with acting_as("twin"):
            sqs = self.twin.client("sqs")
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return Queue(
            arn, name, url, int(attributes.get("DelaySeconds", 0)), int(attributes.get("VisibilityTimeout", 30))
        )

    # --- EventBridge sending ---

    def send(self, arn: str, payload: Any, source: str) -> None:
        queue = self.queue(arn)
        body = payload if isinstance(payload, str) else json.dumps(payload)
        with acting_as("events.amazonaws.com"):
            sent = self.twin.client("sqs").send_message(QueueUrl=queue.url, MessageBody=body)
        self._hide(queue, sent["MessageId"], queue.delay)
        self.twin.trace.add(
            "queue", queue=queue.name, message=sent["MessageId"], status="sent", delay=queue.delay, source=source
        )
        for mapping in self.mappings:
            if mapping.queue_arn == arn and mapping.enabled:
                self.twin.schedule(f"poll {queue.name}", lambda m=mapping: self.poll(m), after=queue.delay)

    # --- Lambda's poller ---

    def poll(self, mapping: SourceMapping) -> None:
        twin = self.twin
        queue = self.queue(mapping.queue_arn)
        self._release(queue)
        function = twin.functions.by_name_or_arn(mapping.function)
        waiting = self._ids(queue)
        with acting_as(function.role_arn):  # Lambda polls with the function's execution role
            received = (
                twin.client("sqs")
                .receive_message(
                    QueueUrl=queue.url,
                    MaxNumberOfMessages=min(mapping.batch_size, 10),
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
                .get("Messages", [])
            )
        ids = [m["MessageId"] for m in received]
        for message_id in sorted(waiting - self._ids(queue) - set(ids)):  # moto's redrive, on this receive
            twin.trace.add("dead-letter", queue=queue.name, message=message_id, note="maxReceiveCount reached")
        if not received:
            return
        for message_id in ids:  # in flight: hidden for the visibility timeout unless deleted
            self._hide(queue, message_id, queue.visibility)
        batch = events.sqs_batch(received, queue_arn=queue.arn, region=twin.region)
        failed = self._invoke(function, batch, ids, mapping)
        with acting_as(function.role_arn):
            for message in received:
                if message["MessageId"] not in failed:
                    twin.client("sqs").delete_message(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"])
                    self._until.pop((queue.name, message["MessageId"]), None)
        twin.trace.add("queue", queue=queue.name, status="handled", handled=len(ids) - len(failed), failed=len(failed))
        if failed:
            twin.schedule(f"poll {queue.name}", lambda: self.poll(mapping), after=queue.visibility)
        if len(received) == min(mapping.batch_size, 10):  # there may be more waiting
            twin.schedule(f"poll {queue.name}", lambda: self.poll(mapping))

    def _invoke(self, function, batch: Mapping[str, Any], ids: list[str], mapping: SourceMapping) -> set[str]:
        """The ids of the messages that failed (all of them when the invocation did)."""
        entry = {"function": function.name, "source": f"queue {mapping.queue_arn.rsplit(':', 1)[-1]}", "attempt": 1}
        try:
            result = function.invoke(batch)
        except Exception as error:  # the function failed: the whole batch comes back
            self.twin.trace.add(
                "invoke",
                **entry,
                status="error",
                error=f"{type(error).__name__}: {error}",
                logs=function.last_logs,
                traceback=traceback.format_exc(limit=6),
            )
            return set(ids)
        self.twin.trace.add("invoke", **entry, status="ok", result=result, logs=function.last_logs)
        if not mapping.report_failures or not isinstance(result, Mapping):
            return set()
        named = {item.get("itemIdentifier") for item in result.get("batchItemFailures") or []}
        return named if named <= set(ids) else set(ids)  # a bad identifier fails the batch

    # --- the twin's clock over moto's ---

    def _hide(self, queue: Queue, message_id: str, seconds: int) -> None:
        self._until[queue.name, message_id] = self.twin.clock + seconds

    def _ids(self, queue: Queue) -> set[str]:
        from moto.sqs.models import sqs_backends

        return {m.id for m in sqs_backends[self.twin.account][self.twin.region].queues[queue.name]._messages}

    def _release(self, queue: Queue) -> None:
        """Messages whose delay or visibility timeout is over on the twin's clock, made available
        in moto, whose own timers run on the wall clock."""
        from moto.sqs.models import sqs_backends

        for message in sqs_backends[self.twin.account][self.twin.region].queues[queue.name]._messages:
            until = self._until.get((queue.name, message.id))
            if until is not None and until <= self.twin.clock:
                message.delayed_until = 0
                message.visible_at = 0
                del self._until[queue.name, message.id]
