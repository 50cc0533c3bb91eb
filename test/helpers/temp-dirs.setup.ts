import { afterAll } from 'vitest';
import { removeTempDirs } from './temp-dirs.js';

// Registered before any test file's own hooks, so it runs after them (vitest runs after-hooks in
// reverse order): services and agents are stopped before their directories go.
afterAll(removeTempDirs);
