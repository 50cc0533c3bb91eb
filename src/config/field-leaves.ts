/**
 * The leaves with a grammar of their own: labels, allowed roots, URLs, ids, Docker hosts and
 * networks, the admin address, capabilities, ulimits, runtimes, driver capabilities, registries.
 * Each message names what is wrong and the fix.
 */
import { posix as path } from 'node:path';
import { errorMessage } from '../errors.js';
import type { LogLevel } from './types.js';
import { parseAdminListen } from './admin-listen.js';
import { normalizeRegistryKey } from '../domain/image-source.js';
import { formatSize, invalid, parseSize, showValue } from './config-units.js';
import { asString, leaf, listItems } from './config-leaves.js';

const LABEL_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const HOSTNAME_RE = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const NETWORK_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const REFUSED_ROOTS = ['/etc', '/proc', '/sys', '/dev', '/boot'];

export const labels = () =>
  leaf((input) => {
    const items = listItems(input, 'labels');
    const bad = items.filter((item) => !LABEL_RE.test(item));
    if (bad.length > 0) {
      throw invalid(
        `${bad.map(showValue).join(', ')} ${bad.length === 1 ? 'is not a valid label' : 'are not valid labels'}; ` +
          'a label is 1-63 lowercase letters, digits, ".", "_" or "-", starting with a letter or digit (e.g. "gpu-h100", "region.eu")',
      );
    }
    return [...new Set(items)];
  });

export const allowedRoots = () =>
  leaf((input) => {
    const roots: string[] = [];
    for (const item of listItems(input, 'absolute directories')) {
      if (!item.startsWith('/')) throw invalid(`${showValue(item)} is not absolute; write a full path such as "/data/models"`);
      if (item.split('/').some((seg) => seg === '.' || seg === '..')) {
        throw invalid(`${showValue(item)} contains "." or ".." segments; write the plain absolute path`);
      }
      const root = path.normalize(item).replace(/\/+$/, '') || '/';
      if (root === '/' || REFUSED_ROOTS.some((r) => root === r || root.startsWith(`${r}/`))) {
        throw invalid(`${showValue(item)} would expose the host system (/, ${REFUSED_ROOTS.join(', ')}); allow a dedicated directory such as "/data/models"`);
      }
      if (!roots.includes(root)) roots.push(root);
    }
    return roots;
  });

export const gatewayUrl = () =>
  leaf((input) => {
    const text = asString(input, 'a ws:// or wss:// URL');
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw invalid(`${showValue(text)} is not a URL; write e.g. "wss://gateway.example.com/agent"`);
    }
    if (url.username !== '' || url.password !== '') {
      throw invalid('the URL carries credentials; remove them and set agent_key_file or CYBERUN_AGENT_KEY instead');
    }
    if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
      throw invalid(`${showValue(text)} is not a WebSocket URL; use wss:// (or ws:// for a local gateway)`);
    }
    if (url.hash !== '') throw invalid(`${showValue(text)} has a #fragment; remove it`);
    return url.toString();
  });

export const agentId = () =>
  leaf((input) => {
    const text = asString(input, 'a hostname-like id');
    if (!HOSTNAME_RE.test(text)) {
      const hint = HOSTNAME_RE.test(text.toLowerCase()) ? ` (try ${showValue(text.toLowerCase())})` : '';
      throw invalid(`${showValue(text)} is not hostname-like; use lowercase letters, digits, "-" and "." (e.g. "gpu-01.dc1")${hint}`);
    }
    return text;
  });

export const dockerHost = () =>
  leaf((input) => {
    const text = asString(input, 'a Docker host URL');
    const match = /^(tcp|http|https|ssh|unix):\/\/(.+)$/.exec(text);
    if (!match || (match[1] === 'unix' && !match[2]?.startsWith('/'))) {
      throw invalid(`${showValue(text)} is not a Docker host; write tcp://host:2375, tcp://host:2376 (with TLS), https://host:2376, ssh://user@host or unix:///path/to/docker.sock`);
    }
    if (match[1] !== 'unix') {
      let url: URL;
      try {
        url = new URL(text.replace(/^(tcp|ssh):/, 'http:'));
      } catch {
        throw invalid(`${showValue(text)} is not a valid host URL; write e.g. tcp://10.0.0.5:2376 or ssh://deploy@gpu-01`);
      }
      if (url.pathname !== '/' && url.pathname !== '') throw invalid(`${showValue(text)} has a path; a Docker host is scheme://host[:port] only`);
      if (url.password !== '' || (url.username !== '' && match[1] !== 'ssh')) {
        throw invalid('the host URL carries credentials; only ssh:// takes a user name (ssh://user@host), and keys come from the ssh-agent');
      }
    }
    return text;
  });

export const network = () =>
  leaf((input) => {
    const text = asString(input, 'a Docker network name');
    if (!NETWORK_RE.test(text)) throw invalid(`${showValue(text)} is not a Docker network name; use letters, digits, "_", "." and "-"`);
    if (['bridge', 'host', 'none', 'default'].includes(text)) {
      throw invalid(`${showValue(text)} is one of Docker's built-in networks; the agent needs a network of its own, e.g. "cyberun"`);
    }
    return text;
  });

/** Validated by the admin endpoint's own parser, so the config and the server agree on the syntax. */
export const adminListen = () =>
  leaf((input) => {
    const text = asString(input, 'a unix socket path, a loopback host:port, or "off"');
    try {
      parseAdminListen(text, '/');
    } catch (err) {
      throw invalid(errorMessage(err));
    }
    return text;
  });

/** Linux capability names as Docker takes them: "NET_RAW" (a "CAP_" prefix and lower case are accepted). */
export const capabilities = () =>
  leaf((input) => {
    const caps = listItems(input, 'capability names').map((c) => c.toUpperCase().replace(/^CAP_/, ''));
    const bad = caps.filter((c) => !/^[A-Z][A-Z0-9_]*$/.test(c));
    if (bad.length > 0) throw invalid(`${bad.map(showValue).join(', ')} is not a capability name; write names such as NET_RAW, SYS_ADMIN (see capabilities(7))`);
    return [...new Set(caps)];
  });

/** A size that may be 0 (= no limit), and at least `min` otherwise. */
export const sizeOrZero = (min: number) =>
  leaf((input) => {
    if (typeof input !== 'string' && typeof input !== 'number') throw invalid(`expected a size such as "16GiB" or 0 for none, got ${showValue(input)}`);
    const bytes = parseSize(input);
    if (bytes !== 0 && bytes < min) throw invalid(`${showValue(input)} is too small; use at least ${formatSize(min)} (Docker's minimum), or 0 for no limit`);
    return bytes;
  });

/** A ulimit in bytes, or "unlimited" / -1 (read back as -1). */
export const ulimitSize = () =>
  leaf((input) => {
    if (input === -1 || (typeof input === 'string' && ['unlimited', '-1'].includes(input.trim().toLowerCase()))) return -1;
    if (typeof input !== 'string' && typeof input !== 'number') throw invalid(`expected a size such as "64MiB" or "unlimited", got ${showValue(input)}`);
    const bytes = parseSize(input);
    if (bytes < 1) throw invalid(`${showValue(input)} is zero; write a size such as "64MiB" or "unlimited"`);
    return bytes;
  });

const RUNTIME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;
export const runtimeName = () =>
  leaf((input) => {
    const text = asString(input, 'a Docker runtime name');
    if (!RUNTIME_RE.test(text)) throw invalid(`${showValue(text)} is not a runtime name; write a name from \`docker info\` Runtimes, such as "nvidia" or "runc"`);
    return text;
  });

/** The values the NVIDIA container toolkit reads from NVIDIA_DRIVER_CAPABILITIES. */
const DRIVER_CAPABILITIES = ['compute', 'compat32', 'graphics', 'utility', 'video', 'display', 'all'] as const;
export const driverCapabilities = () =>
  leaf((input) => {
    const items = listItems(input, 'driver capabilities').map((c) => c.toLowerCase());
    const bad = items.filter((c) => !(DRIVER_CAPABILITIES as readonly string[]).includes(c));
    if (bad.length > 0) throw invalid(`${bad.map(showValue).join(', ')} is not an NVIDIA driver capability; use some of ${DRIVER_CAPABILITIES.join(', ')}`);
    if (items.length === 0) throw invalid('the list is empty; name at least one capability, e.g. "compute,utility"');
    return [...new Set(items)];
  });

const REGISTRY_RE = /^(?=.{1,253}(:\d{1,5})?$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:\d{1,5})?$/;
/** Registry hosts ("ghcr.io", "registry.example.com:5000"); Docker Hub's aliases read as "docker.io". */
export const registries = () =>
  leaf((input) => {
    const hosts = listItems(input, 'registry hosts').map((h) => h.toLowerCase());
    const bad = hosts.filter((h) => !REGISTRY_RE.test(h));
    if (bad.length > 0) throw invalid(`${bad.map(showValue).join(', ')} is not a registry host; write host[:port] without a scheme or path, e.g. "ghcr.io", "registry.example.com:5000", "docker.io"`);
    return [...new Set(hosts.map(normalizeRegistryKey))];
  });


export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const satisfies readonly LogLevel[];
