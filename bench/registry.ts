import type { Benchmark } from './types.js';
import { deployBenchmark } from './deploy.bench.js';
import { faultsBenchmark } from './faults.bench.js';
import { hostileBenchmark } from './hostile.bench.js';
import { idleBenchmark } from './idle.bench.js';
import { proxyBenchmark } from './proxy.bench.js';

/** Every benchmark `npm run bench` runs, in order. Add new ones here. */
export const benchmarks: Benchmark[] = [deployBenchmark, idleBenchmark, proxyBenchmark, hostileBenchmark, faultsBenchmark];
