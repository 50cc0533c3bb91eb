/**
 * Docker's image reference grammar (distribution/reference), restricted to sha256 digests:
 * `[registry[:port]/]repository[:tag][@sha256:<64 hex>]` with a lowercase repository. Pure.
 */

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]{1,5})?$`);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const REFERENCE_SHAPE = 'expected [registry[:port]/]repository[:tag][@sha256:<64 hex>], e.g. "vllm/vllm-openai:latest"';

/** Docker's reference grammar (distribution/reference), restricted to sha256 digests. */
export function imageReferenceProblem(ref: string): string | undefined {
  const bad = (why: string) => `is not a valid image reference: ${why}; ${REFERENCE_SHAPE}`;
  if (ref.length === 0) return bad('it is empty');
  let rest = ref;
  const at = rest.indexOf('@');
  if (at >= 0) {
    if (!DIGEST.test(rest.slice(at + 1))) return bad(`the digest must be "sha256:" followed by 64 lowercase hex characters`);
    rest = rest.slice(0, at);
  }
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    if (!TAG.test(rest.slice(colon + 1))) return bad(`the tag must be 1–128 of A-Z a-z 0-9 _ . - and not start with '.' or '-'`);
    rest = rest.slice(0, colon);
  }
  if (rest.length > 255) return bad('the name is longer than 255 characters');
  const parts = rest.split('/');
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!DOMAIN.test(first)) return bad(`the registry "${first}" is not a valid host[:port]`);
    parts.shift();
  }
  for (const part of parts) {
    if (PATH_COMPONENT.test(part)) continue;
    if (PATH_COMPONENT.test(part.toLowerCase())) return bad('the repository must be lowercase');
    return bad(`"${part}" is not a valid repository component (a-z, 0-9, separated by '.', '_', '__' or '-')`);
  }
  return undefined;
}
