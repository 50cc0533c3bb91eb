import { ProtocolErrorCodes } from '../errors.js';
import { formatIssues } from '../service-definition/issue-text.js';
import { validateServiceDefinition } from '../service-definition/schema.js';
import type { DesiredService } from '../service-definition/types.js';
import { type ErrorFrame, type ServicesSyncFrame } from './protocol.js';

export interface SyncResult {
  /** What to hand to AgentCore.applyDesired. */
  desired: DesiredService[];
  /** One `error` frame per refused service, to send back to the gateway. */
  errors: ErrorFrame[];
}

/**
 * Turns a `services.sync` into the desired set. Pure. Each definition is validated on its own: valid ones
 * apply; an invalid one is reported (service id, slug and every path) and, when the previous sync
 * had a valid version of it, that version is kept, so a bad definition never stops a running service.
 * A repeated id is reported and its later entries ignored.
 */
export function applySync(frame: ServicesSyncFrame, previous: (serviceId: string) => DesiredService | undefined): SyncResult {
  const desired: DesiredService[] = [];
  const errors: ErrorFrame[] = [];
  const seen = new Set<string>();
  for (const { id, definition, deployed_at: deployedAt } of frame.services) {
    if (seen.has(id)) {
      errors.push(serviceError(id, `service ${id} appears more than once in services.sync revision ${frame.revision}; the first entry applies`));
      continue;
    }
    seen.add(id);
    const checked = validateServiceDefinition(definition);
    if (checked.ok) {
      desired.push({ id, definition: checked.value, ...(deployedAt === undefined ? {} : { deployedAt }) });
      continue;
    }
    const slug = typeof definition.service_slug === 'string' ? ` (${definition.service_slug})` : '';
    const kept = previous(id);
    const paths = checked.issues.map((i) => i.path).join(', ');
    const tail = kept === undefined ? 'it is not applied' : 'the previous valid version stays applied';
    errors.push(serviceError(id, `service ${id}${slug} has an invalid definition at ${paths}; ${tail}:\n${formatIssues(checked.issues)}`));
    if (kept !== undefined) desired.push(kept);
  }
  return { desired, errors };
}

function serviceError(serviceId: string, message: string): ErrorFrame {
  return { type: 'error', code: ProtocolErrorCodes.INVALID_SERVICE, message, in_reply_to: 'services.sync', service_id: serviceId };
}
