// Runs operations in N sequential chains side by side and reports throughput and latency. Scenarios that are compared
// run interleaved, in short rounds, so a noisy neighbour on the machine slows all of them alike.

import { performance } from 'node:perf_hooks';

export interface Measurement {
  workers: number;
  ops: number;
  seconds: number;
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time of this (client) process per op: what the Node side costs, apart from the server. */
  clientCpuMsPerOp: number;
}

export interface Scenario {
  name: string;
  /** Number of chains; each runs its ops one after another. */
  workers: number;
  /** One operation of chain `worker`. */
  op(worker: number): Promise<void>;
  close(): Promise<void>;
}

export interface InterleaveOptions {
  warmupMs: number;
  rounds: number;
  roundMs: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

/**
 * Runs the scenario's chains for `ms`: no op starts after that, and the window lasts until the last op in flight has
 * finished. Throughput is every op finished over that whole time (closed-loop throughput), so the ramp-up and the
 * drain are both paid for: with 1,000 chains whose ops take ~150 ms, counting only the ops that finished inside `ms`
 * threw away up to a round's last 150 ms of work while still counting its time.
 */
async function runWindow(scenario: Scenario, ms: number, latencies: number[] | null): Promise<{ cpuMs: number; elapsedMs: number; ops: number }> {
  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  const stopAt = startedAt + ms;
  let ops = 0;
  const chain = async (worker: number) => {
    while (performance.now() < stopAt) {
      const begin = performance.now();
      await scenario.op(worker);
      ops += 1;
      latencies?.push(performance.now() - begin);
    }
  };
  await Promise.all(Array.from({ length: scenario.workers }, (_, worker) => chain(worker)));
  const elapsedMs = performance.now() - startedAt;
  const cpu = process.cpuUsage(cpuBefore);
  return { cpuMs: (cpu.user + cpu.system) / 1000, elapsedMs, ops };
}

/** Warms every scenario up, then runs `rounds` rounds in which each scenario gets `roundMs`, in turn. */
export async function measureInterleaved(scenarios: readonly Scenario[], options: InterleaveOptions): Promise<Measurement[]> {
  for (const scenario of scenarios) await runWindow(scenario, options.warmupMs, null);
  const latencies = scenarios.map((): number[] => []);
  const totals = scenarios.map(() => ({ cpuMs: 0, elapsedMs: 0, ops: 0 }));
  for (let round = 0; round < options.rounds; round++) {
    for (const [index, scenario] of scenarios.entries()) {
      const window = await runWindow(scenario, options.roundMs, latencies[index] ?? null);
      const total = totals[index];
      if (total) {
        total.cpuMs += window.cpuMs;
        total.elapsedMs += window.elapsedMs;
        total.ops += window.ops;
      }
    }
  }
  return scenarios.map((scenario, index) => {
    const sorted = (latencies[index] ?? []).sort((a, b) => a - b);
    const total = totals[index] ?? { cpuMs: 0, elapsedMs: 0, ops: 0 };
    return {
      workers: scenario.workers,
      ops: total.ops,
      seconds: total.elapsedMs / 1000,
      opsPerSecond: total.ops / Math.max(1e-9, total.elapsedMs / 1000),
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      clientCpuMsPerOp: total.cpuMs / Math.max(1, total.ops),
    };
  });
}
