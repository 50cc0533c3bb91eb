/**
 * Whether a failed image pull may succeed later without anyone changing anything (transient: the
 * registry or the network had a blip) or not (definitive: the image does not exist, access is
 * denied, the reference is invalid). Judged at the adapter edge from what the engine reports, which
 * for registry failures is only text: the HTTP status of POST /images/create when it failed before
 * streaming (Docker maps not-found and auth errors to 404/401/403, network errors to 500), else the
 * `error` line of the progress stream. Pure.
 *
 * Unknown failures count as transient: a pull that is retried patiently costs a few requests; a
 * pull wrongly called definitive takes a GPU host's model server down until someone notices.
 */
const DEFINITIVE = [
  /manifest unknown/i,
  /manifest for .* not found/i,
  /not found: manifest/i,
  /pull access denied/i,
  /repository does not exist/i,
  /requested access to the resource is denied/i,
  /unauthorized/i,
  /authentication required/i,
  /denied:/i,
  /invalid reference format/i,
  /repository name must be lowercase/i,
  /no matching manifest for/i,
  /image operating system .* cannot be used on this platform/i,
];

const TRANSIENT = [
  /connection refused/i,
  /connection reset/i,
  /no such host/i,
  /server misbehaving/i,
  /temporary failure in name resolution/i,
  /i\/o timeout/i,
  /TLS handshake timeout/i,
  /timeout exceeded/i,
  /deadline exceeded/i,
  /unexpected EOF/i,
  /\bEOF\b/,
  /toomanyrequests/i,
  /too many requests/i,
  /unexpected HTTP status: 5\d\d/i,
  /\b50[0234]\b.*(service unavailable|bad gateway|gateway timeout|internal server error)/i,
  /network is unreachable/i,
  /no route to host/i,
];

export function isTransientPullFailure(message: string, statusCode?: number): boolean {
  if (TRANSIENT.some((p) => p.test(message))) return true;
  if (DEFINITIVE.some((p) => p.test(message))) return false;
  if (statusCode === 400 || statusCode === 401 || statusCode === 403 || statusCode === 404) return false;
  return true;
}

/**
 * Whether a failed pull ran out of disk on the engine's side (`write /var/lib/docker/…: no space
 * left on device`, `failed to register layer: …: no space left on device`, ENOSPC). Such a pull is
 * retried after image GC made room, so it is transient too. Pure.
 */
export function isNoSpacePullFailure(message: string): boolean {
  return /no space left on device|\bENOSPC\b|disk quota exceeded/i.test(message);
}
