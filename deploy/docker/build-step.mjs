// The build stage of the Dockerfile, in Node so the base image needs no shell.
//   PREBUILT=0 (default): npm ci, npm run build, npm prune --omit=dev (needs the npm registry).
//   PREBUILT=1: the context already holds dist/ and production node_modules/; check them.
// Both: create /state, the agent's state dir, owned by uid/gid 10001 (copied into the runtime image).
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync } from 'node:fs';

const run = (cmd, args) => execFileSync(cmd, args, { stdio: 'inherit' });

if (process.env.PREBUILT === '1') {
  for (const path of ['dist/cli/main.js', 'node_modules/undici/package.json', 'bin/cyberun-agent.js']) {
    if (!existsSync(path)) {
      console.error(`PREBUILT=1 but ${path} is missing: build the context with node deploy/docker/stage-context.mjs <dir>`);
      process.exit(1);
    }
  }
  if (existsSync('node_modules/typescript')) console.error('warning: node_modules holds dev dependencies; stage-context.mjs copies production ones only');
} else {
  run('npm', ['ci', '--no-audit', '--no-fund']);
  run('npm', ['run', 'build']);
  run('npm', ['prune', '--omit=dev', '--no-audit', '--no-fund']);
}
mkdirSync('/state', { mode: 0o700 });
chownSync('/state', 10001, 10001);
