import { ProtocolErrorCodes } from '../../../src/errors.js';
import { describe, expect, it } from 'vitest';

import type { ServiceStatusReport } from '../../../src/domain/status-types.js';
import { PROTOCOL_VERSION, encodeFrame, parseAgentFrame, parseGatewayFrame } from '../../../src/tunnel/protocol.js';
import { decodeDataFrame, encodeDataFrame } from '../../../src/tunnel/protocol-stream.js';

const hello = {
  type: 'hello',
  agent_id: 'gpu-host-1',
  agent_version: '0.1.0',
  protocol_version: PROTOCOL_VERSION,
  labels: ['gpu', 'gpu-h100'],
  platform_arch: 'linux/amd64',
  gpu_devices: [{ device_name: 'NVIDIA H100 80GB HBM3', device_type: 'nvidia', vram_total: 81559, vram_free: 81000 }],
  service_ids: ['5b0e7c1e-0000-4000-8000-000000000001'],
};

const report: ServiceStatusReport = {
  serviceId: 'svc-1',
  slug: 'llm',
  state: 'deploying',
  reason: undefined,
  desiredReplicas: 1,
  readyReplicas: 0,
  replicas: [
    {
      index: 0,
      phase: 'pulling',
      reason: 'pulling vllm/vllm-openai:latest',
      containerId: undefined,
      gpuIds: ['0'],
      restartCount: 0,
      pull: { currentBytes: 10, totalBytes: 100, etaSeconds: undefined },
      since: 1700000000000,
      specHash: undefined,
    },
  ],
  specHash: 'abc',
  warnings: [],
  updatedAt: 1700000000000,
};

const heartbeat = { type: 'heartbeat', running_count: 2, gpu_capacity: 8, gpu_memory_free: 640000 };
const sync = { type: 'services.sync', revision: 7, services: [{ id: 'svc-1', definition: { service_slug: 'llm' } }] };
const welcome = { type: 'welcome', protocol_version: 1, heartbeat_interval_ms: 15000 };

describe('parseAgentFrame', () => {
  it.each([
    ['hello', hello],
    ['hello without GPUs', { ...hello, gpu_devices: [], labels: [] }],
    ['hello with unknown vram (null)', { ...hello, gpu_devices: [{ device_name: 'x', device_type: 'nvidia', vram_total: null, vram_free: null }] }],
    ['hello with an extra field (forward compatible)', { ...hello, future_field: 1 }],
    ['service.status', { type: 'service.status', status: JSON.parse(JSON.stringify(report)) }],
    ['status.snapshot', { type: 'status.snapshot', services: [JSON.parse(JSON.stringify(report))] }],
    ['status.snapshot empty', { type: 'status.snapshot', services: [] }],
    ['heartbeat', heartbeat],
    ['heartbeat with devices', { ...heartbeat, gpu_memory_free: null, gpu_devices: hello.gpu_devices }],
    ['error', { type: 'error', code: 'invalid_service', message: 'x', in_reply_to: 'services.sync', service_id: 's' }],
    ['stream.response', { type: 'stream.response', stream_id: 1, status: 200, headers: { 'content-type': 'text/event-stream' } }],
    ['stream.window', { type: 'stream.window', stream_id: 1, credit: 65536 }],
    ['stream.end', { type: 'stream.end', stream_id: 4294967295 }],
    ['stream.reset', { type: 'stream.reset', stream_id: 3, code: 'upstream_failed' }],
  ])('accepts %s', (_name, frame) => {
    const parsed = parseAgentFrame(JSON.stringify(frame));
    expect(parsed.ok).toBe(true);
  });

  it('turns absent optional report fields back into present undefined keys', () => {
    const parsed = parseAgentFrame(encodeFrame({ type: 'service.status', status: report }));
    expect(parsed.ok && parsed.frame.type === 'service.status' && parsed.frame.status).toEqual(report);
  });

  it.each([
    ['not JSON', '{"type": "hello"', ProtocolErrorCodes.INVALID_JSON, /not valid JSON/],
    ['an array', '[1,2]', ProtocolErrorCodes.INVALID_FRAME, /JSON object with a string "type"/],
    ['no type', '{"agent_id":"x"}', ProtocolErrorCodes.INVALID_FRAME, /string "type"/],
    ['numeric type', '{"type":5}', ProtocolErrorCodes.INVALID_FRAME, /string "type"/],
    ['unknown type', '{"type":"services.delete"}', ProtocolErrorCodes.UNKNOWN_TYPE, /unknown frame type "services.delete"/],
    ['a gateway-only frame from the agent', JSON.stringify(welcome), ProtocolErrorCodes.UNKNOWN_TYPE, /unknown frame type "welcome"/],
    ['prototype key as type', '{"type":"constructor"}', ProtocolErrorCodes.UNKNOWN_TYPE, /constructor/],
    ['hello without agent_id', JSON.stringify({ ...hello, agent_id: undefined }), ProtocolErrorCodes.INVALID_FRAME, /^hello: agent_id:/],
    ['hello with empty agent_id', JSON.stringify({ ...hello, agent_id: '' }), ProtocolErrorCodes.INVALID_FRAME, /agent_id/],
    ['hello with labels not strings', JSON.stringify({ ...hello, labels: ['gpu', 3] }), ProtocolErrorCodes.INVALID_FRAME, /labels\[1\]/],
    ['hello with a bad GPU', JSON.stringify({ ...hello, gpu_devices: [{ device_name: 'x', device_type: 'nvidia', vram_total: 'big', vram_free: 1 }] }), ProtocolErrorCodes.INVALID_FRAME, /gpu_devices\[0\]\.vram_total/],
    ['hello with protocol_version 0', JSON.stringify({ ...hello, protocol_version: 0 }), ProtocolErrorCodes.INVALID_FRAME, /protocol_version/],
    ['service.status with an unknown state', JSON.stringify({ type: 'service.status', status: { ...report, state: 'exploded' } }), ProtocolErrorCodes.INVALID_FRAME, /status\.state/],
    ['service.status with a bad replica phase', JSON.stringify({ type: 'service.status', status: { ...report, replicas: [{ ...report.replicas[0], phase: 'zombie' }] } }), ProtocolErrorCodes.INVALID_FRAME, /status\.replicas\[0\]\.phase/],
    ['heartbeat with a negative count', JSON.stringify({ ...heartbeat, running_count: -1 }), ProtocolErrorCodes.INVALID_FRAME, /running_count/],
    ['stream.window with stream id 0', JSON.stringify({ type: 'stream.window', stream_id: 0, credit: 1 }), ProtocolErrorCodes.INVALID_FRAME, /stream_id/],
    ['stream.response with status 42', JSON.stringify({ type: 'stream.response', stream_id: 1, status: 42, headers: {} }), ProtocolErrorCodes.INVALID_FRAME, /status/],
  ])('refuses %s', (_name, text, code, message) => {
    const parsed = parseAgentFrame(text);
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.code).toBe(code);
    expect(parsed.message).toMatch(message);
  });

  it('names the frame type it answers', () => {
    const parsed = parseAgentFrame(JSON.stringify({ ...heartbeat, gpu_capacity: 'x' }));
    expect(!parsed.ok && parsed.inReplyTo).toBe('heartbeat');
  });
});

describe('parseGatewayFrame', () => {
  it.each([
    ['welcome', welcome],
    ['services.sync', sync],
    ['services.sync empty', { ...sync, services: [] }],
    ['services.sync with an invalid definition (checked later, per service)', { ...sync, services: [{ id: 'a', definition: { gpu_count: 'lots' } }] }],
    ['error', { type: 'error', code: 'invalid_frame', message: 'hello: agent_id: required' }],
    ['stream.open', { type: 'stream.open', stream_id: 9, service_id: 'svc-1', method: 'POST', path: '/v1/chat/completions?x=1', headers: { accept: ['text/event-stream'] } }],
  ])('accepts %s', (_name, frame) => {
    expect(parseGatewayFrame(JSON.stringify(frame)).ok).toBe(true);
  });

  it.each([
    ['welcome without interval', { type: 'welcome', protocol_version: 1 }, /heartbeat_interval_ms/],
    ['welcome with a tiny interval', { ...welcome, heartbeat_interval_ms: 5 }, /heartbeat_interval_ms/],
    ['services.sync with a negative revision', { ...sync, revision: -1 }, /revision/],
    ['services.sync with a fractional revision', { ...sync, revision: 1.5 }, /revision/],
    ['services.sync with a definition that is not an object', { ...sync, services: [{ id: 'a', definition: 'nope' }] }, /services\[0\]\.definition/],
    ['services.sync with an entry without id', { ...sync, services: [{ definition: {} }] }, /services\[0\]\.id/],
    ['stream.open with method TRACE', { type: 'stream.open', stream_id: 1, service_id: 's', method: 'TRACE', path: '/', headers: {} }, /method/],
    ['stream.open with an absolute URL', { type: 'stream.open', stream_id: 1, service_id: 's', method: 'GET', path: 'http://x/', headers: {} }, /path/],
    ['hello (agent-only frame)', hello, /unknown frame type "hello"/],
  ])('refuses %s', (_name, frame, message) => {
    const parsed = parseGatewayFrame(JSON.stringify(frame));
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.message).toMatch(message);
  });
});

describe('binary data frames', () => {
  it('round-trips stream id and payload', () => {
    const frame = encodeDataFrame(0xdeadbeef, Buffer.from('data: {"token":"hi"}\n\n'));
    expect(frame.readUInt32BE(0)).toBe(0xdeadbeef);
    const decoded = decodeDataFrame(frame);
    expect(decoded?.streamId).toBe(0xdeadbeef);
    expect(decoded?.payload.toString()).toBe('data: {"token":"hi"}\n\n');
  });

  it.each([
    ['too short', Buffer.from([0, 0, 1])],
    ['stream 0', Buffer.from([0, 0, 0, 0, 1])],
  ])('refuses a frame %s', (_name, buf) => {
    expect(decodeDataFrame(buf)).toBeUndefined();
  });
});
