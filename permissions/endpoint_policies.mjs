// Answers IAM's question for a batch of requests that travel through a VPC endpoint, with the
// endpoint's policy in force beside the identity and resource policies (@cloud-copilot/iam-simulate
// evaluates VPC endpoint policies as AWS does: a boundary that must also allow the request).
//
// stdin:  {"policies": {id: policy document}, "requests": [{id, principal, action, resource,
//          account, context, identity: [policy id], resource_policy: policy id | null,
//          endpoint_policy: policy id | null, any_resource: bool}]}
// stdout: {"results": [{id, decision, errors}]}
import { runSimulation } from '@cloud-copilot/iam-simulate'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const batch = JSON.parse(Buffer.concat(chunks).toString('utf8'))

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
    results.push({ id: request.id, decision: 'Error', errors: response.errors })
  } else if (response.resultType === 'wildcard' && request.any_resource) {
    // The action names no resource (List*, GetCallerIdentity): IAM asks about "*".
    results.push({ id: request.id, decision: response.overallResult })
  } else if (response.resultType !== 'single') {
    results.push({ id: request.id, decision: 'Error', errors: { message: 'a wildcard resource is not proof' } })
  } else {
    results.push({ id: request.id, decision: response.overallResult, ignored: response.result.ignoredContextKeys ?? [] })
  }
}
process.stdout.write(JSON.stringify({ results }))
