"""The proof: every request evaluated against the deployment's policies by a real IAM evaluator.

``Proof.of(twin)`` gathers the requests (the calls the twin recorded, the requests services
make on the platform's behalf, ``permissions/services.py``, and a data scientist's jobs inside
the guardrails, ``permissions/people.py``) and the policies
(``permissions/policies.py``), and asks ``@cloud-copilot/iam-simulate`` about each: identity
policies and the resource's own policy (for ``sts:AssumeRole``, the role's trust policy). A
request fails when it is not Allowed, when its resource cannot be named, or when the evaluator
rejects it as malformed; the proof fails too where a role or resource policy was never asked
anything (it would prove nothing about it). Grants that no request used are reported beside it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from permissions import reviewed
from permissions.actions import Request, Unknown, needs_resource
from permissions.calls import Where, requests_of
from permissions.policies import Policies, Policy, collect

if TYPE_CHECKING:
    from local.platform import Twin

EVALUATOR = Path(__file__).resolve().parent / "evaluate.mjs"
SERVICE = ".amazonaws.com"


@dataclass(frozen=True)
class Answer:
    request: Request
    decision: str  # Allowed, ImplicitlyDenied, ExplicitlyDenied, Error
    detail: str = ""
    allowed_by: tuple[tuple[str, str, tuple[str, ...]], ...] = ()


@dataclass
class Proof:
    policies: Policies
    requests: list[Request]
    unknowns: list[str] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    account: str = ""

    # --- building ---

    @classmethod
    def of(cls, twin: Twin, extra_calls: Iterable[Mapping[str, Any]] = ()) -> Proof:
        from permissions import people, services

        policies = collect(twin)
        where = where_of(twin, policies)
        calls = [c for c in twin.trace.calls() if c["error"] is None and c["principal"] in policies.roles]
        names = people.Names.of(twin)
        persons = people.inside(names) if names else []  # a data scientist's jobs, which the chain never starts
        requests, unknowns = _gather([*calls, *extra_calls, *persons], where)
        derived, derived_unknowns = services.derive(twin, policies, where, persons)
        proof = cls(policies, _unique([*requests, *derived]), [*unknowns, *derived_unknowns], account=twin.account)
        return proof

    def evaluate(self) -> Proof:
        batch, policy_ids = [], {}
        for policy in self.policies.all():
            policy_ids[policy.id] = policy.document
        for number, request in enumerate(self.requests):
            identity, resource_policy = self._policies_for(request)
            batch.append(
                {
                    "id": number,
                    "principal": request.principal,
                    "action": request.action,
                    "resource": request.resource,
                    "account": self.account,
                    "context": dict(request.context),
                    "identity": [p.id for p in identity],
                    "resource_policy": resource_policy.id if resource_policy else None,
                    "any_resource": request.resource == "*" and not needs_resource(request.action),
                }
            )
        answers = simulate(policy_ids, batch)
        self.answers = [
            Answer(
                self.requests[a["id"]],
                a["decision"],
                json.dumps(a["errors"]) if a.get("errors") else "",
                tuple((p, s, tuple(acts)) for p, s, acts in a["allowed_by"]),
            )
            for a in answers
        ]
        return self

    def _policies_for(self, request: Request) -> tuple[list[Policy], Policy | None]:
        identity = self.policies.roles[request.principal].identity if request.principal in self.policies.roles else []
        if request.action in ("sts:AssumeRole", "sts:SetSourceIdentity"):  # decided by the role's trust policy
            return identity, self.policies.role(request.resource).trust
        return identity, self.policies.resource_policy(request.resource)

    # --- judging ---

    @property
    def denied(self) -> list[Answer]:
        return [a for a in self.answers if a.decision != "Allowed" and not _evaluator_gap(a)]

    @property
    def unevaluable(self) -> list[Answer]:
        """Requests the evaluator cannot decide, each on the reviewed list of its gaps."""
        return [a for a in self.answers if a.decision != "Allowed" and _evaluator_gap(a)]

    @property
    def failures(self) -> list[str]:
        found = [f"{a.decision}: {_describe(a.request)}{' — ' + a.detail if a.detail else ''}" for a in self.denied]
        found += [f"Unknown: {u}" for u in self.unknowns if not _reviewed_unknown(u)]
        found += [f"Not covered: {what}" for what in self.uncovered()]
        return found

    def uncovered(self) -> list[str]:
        """Roles no request was made by or to (its trust policy), and resource policies no request
        was judged against: what the proof says nothing about."""
        asked: set[str] = set()
        for answer in self.answers:
            request = answer.request
            asked.add(request.principal)
            _, resource_policy = self._policies_for(request)
            if resource_policy is not None:
                asked.add(resource_policy.id)
        roles = [
            f"role {arn}"
            for arn, role in self.policies.roles.items()
            if arn not in asked and role.trust.id not in asked
        ]
        policies = [f"{p.origin} ({arn})" for arn, p in self.policies.resources.items() if p.id not in asked]
        return sorted(roles) + sorted(policies)

    def unused(self) -> list[tuple[Policy, str, str]]:
        """(policy, statement, action pattern) of each Allow that no request needed."""
        used: set[tuple[str, str, str]] = set()
        for answer in self.answers:
            for policy_id, statement, patterns in answer.allowed_by:
                used.update((policy_id, statement, p) for p in patterns)
        found = []
        for policy in self.policies.all():
            if policy.id.endswith("#trust"):
                continue
            for index, statement in enumerate(_statements(policy.document)):
                if statement.get("Effect") != "Allow":
                    continue
                sid = str(statement.get("Sid") or index + 1)
                for pattern in _listed(statement.get("Action")):
                    if (policy.id, sid, pattern) not in used:
                        found.append((policy, sid, pattern))
        return found

    def unexplained(self) -> list[str]:
        """Unused grants with no reason on the reviewed list: each is to be removed or explained."""
        return [label for label, reason in self.unused_reasons() if not reason]

    def unused_reasons(self) -> list[tuple[str, str]]:
        """Each unused grant and the reviewed reason it is kept ("" where there is none)."""
        return [(f"{p.origin} [{sid}] {pattern}", _kept(p, pattern)) for p, sid, pattern in self.unused()]

    def report(self) -> str:
        """What was asked and what was allowed, per role and per resource policy."""
        lines: list[str] = []
        by_principal: dict[str, list[Answer]] = defaultdict(list)
        by_policy: dict[str, list[Answer]] = defaultdict(list)
        for answer in self.answers:
            by_principal[answer.request.principal].append(answer)
            _, resource_policy = self._policies_for(answer.request)
            if resource_policy is not None:
                by_policy[resource_policy.origin].append(answer)
        for title, groups in (("Per principal", by_principal), ("Per resource policy", by_policy)):
            lines.append(f"== {title} ==")
            for name in sorted(groups):
                answers = groups[name]
                allowed = sum(a.decision == "Allowed" for a in answers)
                lines.append(f"{name}: {allowed}/{len(answers)} allowed")
                for answer in sorted(answers, key=lambda a: (a.request.action, a.request.resource)):
                    mark = "ok  " if answer.decision == "Allowed" else "DENY"
                    lines.append(f"  {mark} {answer.request.action} {answer.request.resource}")
        unused = self.unused_reasons()
        lines.append(f"== Grants no request used ({len(unused)}) ==")
        lines += [f"  {label}{' — ' + reason if reason else ''}" for label, reason in unused]
        lines.append(f"== Requests the evaluator cannot decide ({len(self.unevaluable)}), reviewed ==")
        lines += [f"  {_describe(a.request)}: {a.detail}" for a in self.unevaluable]
        failures = self.failures
        lines.append(f"== {len(self.answers)} requests, {len(failures)} failures ==")
        lines += [f"  {f}" for f in failures]
        return "\n".join(lines)


def where_of(twin: Twin, policies: Policies) -> Where:
    buckets: dict[str, tuple[str, bool]] = {}
    for stack in twin.cloudformation.stacks.values():
        resources = stack.template.get("Resources", {})
        for logical_id, properties in stack.applied.items():
            if resources[logical_id]["Type"] != "AWS::S3::Bucket" or logical_id not in stack.physical:
                continue
            for rule in properties.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", []):
                default = rule.get("ServerSideEncryptionByDefault", {})
                if default.get("SSEAlgorithm") == "aws:kms" and default.get("KMSMasterKeyID"):
                    key = default["KMSMasterKeyID"]
                    buckets[stack.physical[logical_id].ref] = (
                        policies.keys.get(key, key),
                        bool(rule.get("BucketKeyEnabled")),
                    )

    def object_key(bucket: str, key: str) -> str | None:
        from moto.s3.models import s3_backends

        try:
            stored = s3_backends[twin.account]["aws"].get_object(bucket, key)
        except Exception:
            stored = None
        if stored is not None and stored.kms_key_id:
            return policies.keys.get(stored.kms_key_id, stored.kms_key_id)
        return buckets.get(bucket, (None, False))[0]

    return Where(
        account=twin.account,
        region=twin.region,
        stacks={s.name: s.stack_id for s in twin.cloudformation.stacks.values()},
        bucket_keys=buckets,
        object_key=object_key,
    )


def _gather(calls: Iterable[Mapping[str, Any]], where: Where) -> tuple[list[Request], list[str]]:
    requests, unknowns = [], []
    for call in calls:
        for found in requests_of(call, where):
            if isinstance(found, Unknown):
                unknowns.append(str(found))
            else:
                requests.append(found)
    return requests, sorted(set(unknowns))


def _unique(requests: Iterable[Request]) -> list[Request]:
    seen: dict[str, Request] = {}
    for request in requests:
        seen.setdefault(request.key(), request)
    return list(seen.values())


def simulate(policies: dict[str, Any], batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """evaluate.mjs's answers for a batch of requests (the policies by id): the one way to the evaluator."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node not found: the permission proof runs @cloud-copilot/iam-simulate (make setup)")
    completed = subprocess.run(
        [node, str(EVALUATOR)],
        input=json.dumps({"policies": policies, "requests": batch}),
        capture_output=True,
        text=True,
        check=False,
        cwd=EVALUATOR.parent,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the IAM evaluator failed: {completed.stderr.strip()}")
    return json.loads(completed.stdout)["results"]


def _statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _describe(request: Request) -> str:
    return f"{request.principal} {request.action} {request.resource} ({request.why})"


def _kept(policy: Policy, pattern: str) -> str:
    """Why an unused grant is kept (reviewed.UNUSED; "*" stands for any action of the policy)."""
    logical_id = policy.origin.rsplit("/", 1)[-1]
    return next(
        (why for (prefix, p), why in reviewed.UNUSED.items() if p in (pattern, "*") and logical_id.startswith(prefix)),
        "",
    )


def _evaluator_gap(answer: Answer) -> bool:
    return answer.decision == "Unevaluable" and any(
        answer.request.principal.startswith(principal) and answer.request.action == action
        for principal, action in reviewed.EVALUATOR_GAPS
    )


def _reviewed_unknown(message: str) -> bool:
    return any(message.startswith(prefix) for prefix in reviewed.UNKNOWNS)
