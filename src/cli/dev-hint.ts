/**
 * The image `npm start`'s "deploy something" hint names: one this engine already has (no registry
 * may be reachable), with the port it serves on. Known images first; else any tagged image with a
 * placeholder port; else undefined (the hint then says how to get one). Pure.
 */
const KNOWN: ReadonlyArray<{ match: RegExp; port: number }> = [
  { match: /^(docker\.io\/)?(library\/)?nginx(:|$)/, port: 80 },
  { match: /^cyberun-test\/busybox-http:/, port: 8080 },
  { match: /^cyberun-test\/node-http:/, port: 8080 },
  { match: /^(docker\.io\/)?(library\/)?httpd(:|$)/, port: 80 },
];

export function demoImage(tags: readonly string[]): { image: string; port: number | undefined } | undefined {
  const usable = tags.filter((t) => t !== '<none>:<none>' && !t.endsWith(':<none>'));
  for (const known of KNOWN) {
    const hit = usable.find((t) => known.match.test(t));
    if (hit !== undefined) return { image: hit, port: known.port };
  }
  const any = usable.find((t) => !t.startsWith('cyberun-test/systemd'));
  return any === undefined ? undefined : { image: any, port: undefined };
}
