import { describe, expect, it } from 'vitest';
import { AgentKeyring } from '../../../src/gateway/auth.js';
import { API_KEY_PREFIXES, generateKey, keyProblem, parseKeyList } from '../../../src/gateway/key-material.js';

const AK1 = 'ak-aaaaaaaaaaaaaaaaaaaaaaaa';
const AK2 = 'ak-bbbbbbbbbbbbbbbbbbbbbbbb';

describe('key material', () => {
  it('generates keys of 32 random bytes (43 base64url characters after the prefix)', () => {
    const a = generateKey('ak-');
    expect(a).toMatch(/^ak-[A-Za-z0-9_-]{43}$/);
    expect(generateKey('ak-')).not.toBe(a);
    expect(keyProblem(a, ['ak-'])).toBeUndefined();
  });

  it.each([
    ['sk-', /0 characters after "sk-"/],
    ['sk-short', /5 characters after "sk-"; keys need at least 24/],
    ['ak-aaaaaaaaaaaaaaaaaaaaaaaa', /must start with sk- or dk-/],
    ['sk-aaaaaaaaaaaa aaaaaaaaaaaa', /whitespace/],
  ])('refuses %j', (key, problem) => {
    expect(keyProblem(key, API_KEY_PREFIXES)).toMatch(problem);
  });

  it('parses agent-keys lines: key + agent id, or a bare shared key; comments and blanks skipped', () => {
    expect(parseKeyList(`# agents\n\n${AK1} gpu-host-1\n  ${AK2}  \n`, 'agent', 'agent-keys')).toEqual([
      { key: AK1, agentId: 'gpu-host-1' },
      { key: AK2, agentId: undefined },
    ]);
    expect(parseKeyList('# nothing yet\n', 'agent', 'agent-keys')).toEqual([]);
  });

  it('names every bad line and never quotes a key', () => {
    let message = '';
    try {
      parseKeyList(`${AK1} Host_1\nak-tiny x\n${AK2} a b\n${AK1} c\n`, 'agent', 'agent-keys');
    } catch (err) {
      message = (err as Error).message;
      expect((err as { code?: string }).code).toBe('AGENT_ERR_KEY_INVALID');
    }
    expect(message).toMatch(/line 1: agent id "Host_1" is not hostname-like/);
    expect(message).toMatch(/line 2: the key has 4 characters/);
    expect(message).toMatch(/line 3: expected "<ak-key> <agent-id>", found 3 fields/);
    expect(message).not.toContain(AK1);
  });

  it('refuses an API key list without keys or with an agent id', () => {
    expect(() => parseKeyList('# none\n', 'api', 'api-keys')).toThrow(/api-keys holds no keys/);
    expect(() => parseKeyList(`sk-${'a'.repeat(24)} host\n`, 'api', 'api-keys')).toThrow(/line 1: expected one key, found 2 fields/);
  });
});

describe('AgentKeyring', () => {
  it('names the agent id a key is issued for; a shared key names none; unknown keys do not match', () => {
    const ring = new AgentKeyring([{ key: AK1, agentId: 'gpu-host-1' }, { key: AK2, agentId: undefined }]);
    expect(ring.match(AK1)).toEqual({ agentId: 'gpu-host-1' });
    expect(ring.match(AK2)).toEqual({ agentId: undefined });
    expect(ring.match(`${AK1}x`)).toBeUndefined();
    expect(ring.sharedCount).toBe(1);
  });
});
