/**
 * One benchmark row: a measured value next to a baseline measured in the same run on the same
 * machine, and the ratio the target is stated in. Benchmarks print; tests never assert timings.
 */
export interface BenchResult {
  /** e.g. "deploy: desired → 10 replicas ready" */
  name: string;
  unit: string;
  value: number;
  /** The in-run baseline; undefined for absolute measurements (e.g. idle RSS). */
  baseline: number | undefined;
  /** value / baseline (or the ratio the target is stated in). */
  ratio: number | undefined;
  /** Human statement of the goal, e.g. "ratio <= 1.15". */
  target: string;
  /** Whether the goal was met. */
  met: boolean;
}

export interface Benchmark {
  name: string;
  /** Whether the benchmark can run here (e.g. needs Docker); a reason when not. */
  available(): Promise<true | string>;
  run(): Promise<BenchResult[]>;
}
