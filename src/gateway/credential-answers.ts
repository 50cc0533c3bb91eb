import { CredentialErrorCodes } from '../errors.js';
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
 * code (CredentialErrorCodes). Values are never logged; refusals are, without the value.
 */
export async function answerCredential(session: AgentSession, frame: CredentialResolveFrame, resolve: ResolveCredential | undefined): Promise<void> {
  const agentId = session.agentId ?? '';
  let answer: CredentialAnswer;
  try {
    answer = resolve === undefined
      ? { code: CredentialErrorCodes.UNAVAILABLE, message: 'this gateway has no credentials store' }
      : await resolve({ agentId, serviceId: frame.service_id, credentialId: frame.credential_id });
  } catch (err) {
    answer = { code: CredentialErrorCodes.UNAVAILABLE, message: `credentials store failed: ${(err as Error).message}` };
  }
  if ('value' in answer) {
    session.send({ type: 'credential.resolved', request_id: frame.request_id, value: answer.value, ...(answer.ttlMs === undefined ? {} : { ttl_ms: answer.ttlMs }) });
  } else {
    session.log.warn({ serviceId: frame.service_id, credentialId: frame.credential_id, code: answer.code, problem: answer.message }, 'credential.resolve refused');
    session.send({ type: 'credential.resolved', request_id: frame.request_id, error: { code: answer.code, message: answer.message } });
  }
}
