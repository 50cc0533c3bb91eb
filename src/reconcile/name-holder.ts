import type { Logger } from '../log.js';
import type { ContainerCreateRequest } from '../runtime/container-runtime.js';
import { Labels, replicaIndexOf, serviceIdOf } from '../domain/ownership-labels.js';
import type { ObservedContainer } from '../domain/observed-container.js';
import { AgentError, ErrorCodes, isAgentError } from '../errors.js';
import type { WorkerContext } from './worker-context.js';

/**
 * Creates the container; when its name is taken by a container of this agent that is no desired
 * replica of a desired service (left by a service deleted and created again under the same slug
 * while the agent was away, or by a reset state dir), that container is removed at once and the
 * create is tried once more. A holder that is not this agent's is never touched: the create fails
 * with DOCKER_CONFLICT and a message naming it.
 */
export async function createResolvingName(ctx: WorkerContext, request: ContainerCreateRequest, log: Logger): Promise<string> {
  const { runtime } = ctx;
  try {
    return await runtime.createContainer(request);
  } catch (err) {
    if (!isAgentError(err, ErrorCodes.DOCKER_CONFLICT)) throw err;
    const holder = await runtime.inspectContainer(request.name);
    if (holder === undefined) return await runtime.createContainer(request);
    const verdict = judgeNameHolder(ctx, holder);
    if (verdict !== undefined) throw new AgentError(ErrorCodes.DOCKER_CONFLICT, `the name ${request.name} is held by container ${holder.id.slice(0, 12)}, ${verdict}`, { cause: err });
    log.warn({ container: holder.id, name: request.name, heldBy: serviceIdOf(holder) }, 'removing a leftover container of this agent that holds the replica name');
    ctx.prober.forget(holder.id);
    await runtime.stopContainer(holder.id, ctx.stopTimeoutMs);
    await runtime.removeContainer(holder.id);
    ctx.gpus.release(holder.id);
    return await runtime.createContainer(request);
  }
}

/** Why a name holder must be left alone, or undefined when it is a leftover of this agent. */
function judgeNameHolder(ctx: WorkerContext, holder: ObservedContainer): string | undefined {
  if (holder.labels[Labels.MANAGED] !== 'true' || holder.labels[Labels.AGENT_ID] !== ctx.agentId) {
    const owner = holder.labels[Labels.AGENT_ID];
    return owner !== undefined && holder.labels[Labels.MANAGED] === 'true'
      ? `which belongs to another agent ("${owner}"): this agent never touches it; remove or rename it, or give the agents distinct hosts`
      : 'which this agent does not manage: it is never touched; rename or remove it (docker rename / docker rm) so the replica can be created';
  }
  const serviceId = serviceIdOf(holder);
  const desired = serviceId === undefined ? undefined : ctx.desiredService(serviceId);
  const index = replicaIndexOf(holder);
  if (desired !== undefined && desired.definition.service_type === 'deployed' && index >= 0 && index < desired.definition.replica_count) {
    return `a replica of the desired service ${desired.definition.service_slug} (${serviceId}): waiting for it to go`;
  }
  return undefined;
}
