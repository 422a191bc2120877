// Answers IAM's question for a batch of requests with @cloud-copilot/iam-simulate (a development
// dependency, pinned in package.json; never deployed).
//
// stdin:  {"policies": {id: policy document}, "requests": [{id, principal, action, resource,
//          account, context, identity: [policy id], resource_policy: policy id | null,
//          endpoint_policy: policy id | null}]}
// stdout: {"results": [{id, decision, errors, allowed_by: [[policy id, statement id, [action patterns]]]}]}
//
// A statement "allows" a request when it matched it (action, resource, principal, conditions);
// the Python side uses that to report grants no request needed. A request with an endpoint_policy
// travels through a VPC endpoint: iam-simulate evaluates that policy as AWS does, a boundary that
// must also allow the request (permissions/endpoints.py).
import { runSimulation } from '@cloud-copilot/iam-simulate'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const batch = JSON.parse(Buffer.concat(chunks).toString('utf8'))

function matched(analysis, policyIdOf) {
  const out = []
  for (const statement of analysis?.allowStatements ?? []) {
    const explain = statement.explain ?? {}
    const actions = [explain.actions ?? []].flat().filter((a) => a.matches).map((a) => a.action)
    out.push([policyIdOf(statement), String(explain.identifier ?? ''), actions])
  }
  return out
}

const results = []
for (const request of batch.requests) {
  const simulation = {
    request: {
      principal: request.principal,
      action: request.action,
      resource: { resource: request.resource, accountId: request.account },
      contextVariables: request.context ?? {},
    },
    identityPolicies: (request.identity ?? []).map((id) => ({ name: id, policy: batch.policies[id] })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
  }
  if (request.resource_policy) simulation.resourcePolicy = batch.policies[request.resource_policy]
  if (request.endpoint_policy) {
    simulation.vpcEndpointPolicies = [{ name: request.endpoint_policy, policy: batch.policies[request.endpoint_policy] }]
  }
  const response = await runSimulation(simulation, {})
  if (response.resultType === 'error') {
    results.push({ id: request.id, decision: 'Error', errors: response.errors, allowed_by: [] })
    continue
  }
  if (response.resultType === 'wildcard' && request.any_resource) {
    // The action names no resource in this request (List*, PutMetricData): IAM asks about "*".
    const allowed = response.results.flatMap((r) => [
      ...matched(r.analysis?.identityAnalysis, (s) => s.policyId),
      ...matched(r.analysis?.resourceAnalysis, () => request.resource_policy),
    ])
    results.push({ id: request.id, decision: response.overallResult, allowed_by: allowed })
    continue
  }
  if (response.resultType !== 'single') {
    results.push({ id: request.id, decision: 'Error', errors: { message: 'a wildcard resource is not proof' }, allowed_by: [] })
    continue
  }
  const analysis = response.result.analysis
  const ignored = response.result.ignoredContextKeys ?? []
  if (response.overallResult !== 'Allowed' && ignored.some((key) => key.toLowerCase().startsWith('kms:encryptioncontext:'))) {
    // iam-simulate 0.1.173 recognises variable condition keys only in the "prefix/name" form and
    // drops kms:EncryptionContext:<key> (documented for every KMS cryptographic action), so a
    // statement conditioned on it cannot match: say so rather than answer "denied".
    // https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-encryption-context
    results.push({ id: request.id, decision: 'Unevaluable', errors: { message: `the evaluator drops ${ignored.join(', ')}` }, allowed_by: [] })
    continue
  }
  results.push({
    id: request.id,
    decision: response.overallResult,
    ignored_context_keys: response.result.ignoredContextKeys ?? [],
    allowed_by: [
      ...matched(analysis.identityAnalysis, (s) => s.policyId),
      ...matched(analysis.resourceAnalysis, () => request.resource_policy),
    ],
  })
}
process.stdout.write(JSON.stringify({ results }))
