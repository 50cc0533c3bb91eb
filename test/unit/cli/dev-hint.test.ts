import { describe, expect, it } from 'vitest';
import { demoImage } from '../../../src/cli/dev-hint.js';

describe('demoImage: the image npm start\'s hint names', () => {
  it.each<[string[], ReturnType<typeof demoImage>]>([
    [['vllm/vllm-openai:v0.6.0', 'nginx:alpine'], { image: 'nginx:alpine', port: 80 }],
    [['cyberun-test/node-http:1', 'cyberun-test/busybox-http:1'], { image: 'cyberun-test/busybox-http:1', port: 8080 }],
    [['docker.io/library/nginx:1.27'], { image: 'docker.io/library/nginx:1.27', port: 80 }],
    [['<none>:<none>', 'cyberun-test/systemd:12', 'acme/app:2'], { image: 'acme/app:2', port: undefined }],
    [['nginxish/app:1'], { image: 'nginxish/app:1', port: undefined }],
    [[], undefined],
    [['<none>:<none>'], undefined],
  ])('%j → %j', (tags, expected) => expect(demoImage(tags)).toEqual(expected));
});
