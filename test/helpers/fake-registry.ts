import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';

/**
 * A tiny Docker Registry v2 on 127.0.0.1 for pull tests (the engine treats 127.0.0.0/8 registries
 * as insecure, so plain HTTP works). It serves one single-layer schema2 image under any repository
 * name (a distinct random image per repository); per repository the behaviour can be set to 'serve' (whole image, layer sent in slow chunks
 * so the engine reports progress) or 'stall-layer' (layer headers and half the bytes, then
 * nothing) or 'missing' (manifest unknown). Every request is recorded.
 */

export type RepoBehaviour = 'serve' | 'stall-layer' | 'missing';

export interface RecordedRequest {
  method: string;
  path: string;
}

export interface FakeRegistry {
  /** `127.0.0.1:<port>` */
  host: string;
  requests: RecordedRequest[];
  setBehaviour(repository: string, behaviour: RepoBehaviour): void;
  /** Sockets of stalled layer downloads still open (the engine closes them when it cancels). */
  openStalls(): number;
  /**
   * Cuts every stalled layer download. dockerd 20.10 keeps a cancelled pull's blocked blob read
   * open, and each one holds one of its few concurrent-download slots: a later pull can then
   * wait behind them with no progress (and be reported stalled itself).
   */
  releaseStalls(): void;
  /** Compressed size of the repository's one layer (what the engine reports as total bytes). */
  layerSize(repository: string): number;
  close(): Promise<void>;
}

function sha256(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

/** A one-file ustar archive (what a layer's uncompressed diff is). */
export function tarOneFile(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string): void => {
    header.write(value, offset, length, 'ascii');
  };
  const octal = (value: number, length: number): string => value.toString(8).padStart(length - 1, '0') + '\0';
  field(0, 100, name);
  field(100, 8, octal(0o644, 8));
  field(108, 8, octal(0, 8));
  field(116, 8, octal(0, 8));
  field(124, 12, octal(content.length, 12));
  field(136, 12, octal(Math.floor(Date.now() / 1000), 12));
  field(148, 8, '        '); // checksum is computed with this field as spaces
  field(156, 1, '0');
  field(257, 6, 'ustar\0');
  field(263, 2, '00');
  let sum = 0;
  for (const byte of header) sum += byte;
  field(148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, padding, Buffer.alloc(1024)]);
}

interface FakeImage {
  manifest: Buffer;
  manifestDigest: string;
  config: Buffer;
  configDigest: string;
  layer: Buffer;
  layerDigest: string;
}

/** A distinct single-layer image (random payload: incompressible, and never "Already exists"). */
function makeImage(layerBytes: number): FakeImage {
  const tar = tarOneFile('payload.bin', randomBytes(layerBytes));
  const layer = gzipSync(tar);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/payload.bin'] },
      rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
      history: [{ created_by: 'cyberun fake registry' }],
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: sha256(config) },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: layer.length, digest: sha256(layer) }],
    }),
  );
  return { manifest, manifestDigest: sha256(manifest), config, configDigest: sha256(config), layer, layerDigest: sha256(layer) };
}

export async function startFakeRegistry(options: { layerBytes?: number; chunkDelayMs?: number } = {}): Promise<FakeRegistry> {
  const layerBytes = options.layerBytes ?? 2 * 1024 * 1024;
  const images = new Map<string, FakeImage>();
  const imageOf = (repository: string): FakeImage => {
    let image = images.get(repository);
    if (image === undefined) {
      image = makeImage(layerBytes);
      images.set(repository, image);
    }
    return image;
  };
  const behaviours = new Map<string, RepoBehaviour>();
  const requests: RecordedRequest[] = [];
  const stalled = new Set<ServerResponse>();
  const chunkDelayMs = options.chunkDelayMs ?? 20;

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    requests.push({ method: req.method ?? 'GET', path });
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    if (path === '/v2/' || path === '/v2') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
      return;
    }
    const match = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(path);
    if (match === null) {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"NOT_FOUND","message":"not found"}]}');
      return;
    }
    const [, repository = '', kind, ref = ''] = match;
    const behaviour = behaviours.get(repository) ?? 'serve';
    const { manifest, manifestDigest, config, configDigest, layer, layerDigest } = imageOf(repository);
    const head = req.method === 'HEAD';
    if (kind === 'manifests' && behaviour === 'missing') {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(head ? undefined : JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown', detail: { Tag: ref } }] }));
      return;
    }
    if (kind === 'manifests') {
      res.writeHead(200, {
        'Content-Type': 'application/vnd.docker.distribution.manifest.v2+json',
        'Content-Length': manifest.length,
        'Docker-Content-Digest': manifestDigest,
      });
      res.end(head ? undefined : manifest);
      return;
    }
    if (ref === configDigest) {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': config.length, 'Docker-Content-Digest': configDigest });
      res.end(head ? undefined : config);
      return;
    }
    if (ref !== layerDigest) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': layer.length, 'Docker-Content-Digest': layerDigest });
    if (head) {
      res.end();
      return;
    }
    if (behaviour === 'stall-layer') {
      res.write(layer.subarray(0, Math.floor(layer.length / 2)));
      stalled.add(res);
      res.on('close', () => stalled.delete(res));
      return;
    }
    // Slow chunks, so the engine reports several "Downloading" steps.
    const chunk = 256 * 1024;
    let offset = 0;
    const next = (): void => {
      if (res.destroyed) return;
      if (offset >= layer.length) {
        res.end();
        return;
      }
      res.write(layer.subarray(offset, offset + chunk));
      offset += chunk;
      setTimeout(next, chunkDelayMs);
    };
    next();
  };

  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    requests,
    layerSize: (repository) => imageOf(repository).layer.length,
    setBehaviour: (repository, behaviour) => behaviours.set(repository, behaviour),
    openStalls: () => stalled.size,
    releaseStalls: () => {
      for (const res of stalled) res.destroy();
    },
    close: async () => {
      for (const res of stalled) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
