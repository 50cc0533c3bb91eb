import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../src/errors.js';
import { classifyDockerError, engineMessage, translateDockerError } from '../../../src/runtime/docker-errors.js';
import { encodeQuery, encodeRegistryAuth, EngineHttpError } from '../../../src/runtime/engine-client.js';

describe('encodeQuery (Docker query conventions, as docker-modem sent them)', () => {
  it.each<[string, Record<string, unknown> | undefined, string]>([
    ['nothing', undefined, ''],
    ['an empty object', {}, ''],
    ['booleans and numbers', { all: true, force: true, v: true, t: 10 }, '?all=true&force=true&v=true&t=10'],
    ['a JSON filter object', { filters: { label: ['a=1', 'b'] } }, `?filters=${encodeURIComponent('{"label":["a=1","b"]}')}`],
    ['an array repeats its key', { id: ['x', 'y'] }, '?id=x&id=y'],
    ['undefined and null are left out', { a: undefined, b: null, c: 'd' }, '?c=d'],
    ['reserved characters are escaped', { fromImage: '127.0.0.1:5000/x/y', tag: 'sha256:abc' }, '?fromImage=127.0.0.1%3A5000%2Fx%2Fy&tag=sha256%3Aabc'],
  ])('%s', (_label, query, expected) => {
    expect(encodeQuery(query)).toBe(expected);
  });

  it('round-trips the filters the engine parses', () => {
    const filters = { type: ['container'], label: ['cloud.cyberun.managed=true', 'cloud.cyberun.service-id'] };
    const params = new URLSearchParams(encodeQuery({ filters, since: '1790000000.123456790' }));
    expect(JSON.parse(params.get('filters') ?? '')).toEqual(filters);
    expect(params.get('since')).toBe('1790000000.123456790');
  });
});

describe('encodeRegistryAuth', () => {
  it('is base64url of the JSON, decodable by the engine', () => {
    // '?>?' in the password gives '+' and '/' in plain base64.
    const auth = { username: 'u', password: 'p?>?~~~', serveraddress: 'ghcr.io' };
    const encoded = encodeRegistryAuth(auth);
    expect(Buffer.from(JSON.stringify(auth)).toString('base64')).toMatch(/[+/]/);
    expect(encoded).not.toMatch(/[+/]/);
    expect(JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'))).toEqual(auth);
  });
});

describe('EngineHttpError through the docker-errors translation', () => {
  it.each<[string, number, string, string, string]>([
    ['404 {"message"}', 404, '{"message":"No such container: gone"}', ErrorCodes.DOCKER_NOT_FOUND, 'No such container: gone'],
    ['409 {"message"}', 409, '{"message":"Conflict. The name is in use"}\n', ErrorCodes.DOCKER_CONFLICT, 'Conflict. The name is in use'],
    ['500 plain text', 500, 'page not found\n', ErrorCodes.DOCKER_API, 'page not found'],
    ['500 empty body', 500, '', ErrorCodes.DOCKER_API, 'the Docker Engine answered HTTP 500 with an empty body'],
    ['304 not in ok', 304, '', ErrorCodes.DOCKER_API, 'the Docker Engine answered HTTP 304 with an empty body'],
  ])('%s', (_label, status, body, code, message) => {
    const err = new EngineHttpError(status, body);
    expect(err.statusCode).toBe(status);
    expect(engineMessage(err)).toBe(message);
    expect(classifyDockerError(err, false).code).toBe(code);
    const translated = translateDockerError(err, { call: 'inspect container', object: 'abc' });
    expect(translated.code).toBe(code);
    expect(translated.message).toBe(`inspect container abc failed: ${message}`);
    expect(translated.cause).toBe(err);
    expect(translated.details).toMatchObject({ statusCode: status });
  });
});
