import { CredentialErrorCodes, ProtocolErrorCodes } from '../errors.js';
import type { CredentialResolveFrame } from '../tunnel/protocol-stream.js';
import type { AgentSession } from './agent-session.js';

export type CredentialAnswer = { value: string; ttlMs?: number } | { code: string; message: string };

/**
 * Resolves one credential for the asking agent; must refuse anything but the credential of an
 * external service placed on that agent (gateway-server.ts wires the store and the placement).
 */
export type ResolveCredential = (request: { agentId: string; serviceId: string; credentialId: string }) => Promise<CredentialAnswer>;

/**
 * Answers one `credential.resolve` on `session` with `credential.resolved`: the value, or an error
 * code (CredentialErrorCodes). Values are never logged; refusals are, without the value, and a
 * `forbidden` one counts as an invalid frame of the connection (an agent asking for what was never
 * given to it). At most `maxPendingCredentials` lookups run per connection.
 */
export async function answerCredential(session: AgentSession, frame: CredentialResolveFrame, resolve: ResolveCredential | undefined): Promise<void> {
  if (!session.credentialStarted(frame.request_id)) return;
  const agentId = session.agentId ?? '';
  let answer: CredentialAnswer;
  try {
    answer = resolve === undefined
      ? { code: CredentialErrorCodes.UNAVAILABLE, message: 'this gateway has no credentials store' }
      : await resolve({ agentId, serviceId: frame.service_id, credentialId: frame.credential_id });
  } catch (err) {
    answer = { code: CredentialErrorCodes.UNAVAILABLE, message: `credentials store failed: ${(err as Error).message}` };
  } finally {
    session.credentialDone();
  }
  if ('value' in answer) {
    session.reply({ type: 'credential.resolved', request_id: frame.request_id, value: answer.value, ...(answer.ttlMs === undefined ? {} : { ttl_ms: answer.ttlMs }) });
    return;
  }
  session.reply({ type: 'credential.resolved', request_id: frame.request_id, error: { code: answer.code, message: answer.message } });
  if (answer.code === CredentialErrorCodes.FORBIDDEN) session.refuse(ProtocolErrorCodes.NOT_PLACED, answer.message, 'credential.resolve', true);
  else session.warnings.warn({ serviceId: frame.service_id.slice(0, 64), credentialId: frame.credential_id.slice(0, 64), code: answer.code, problem: answer.message }, 'credential.resolve refused');
}
