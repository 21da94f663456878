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

/** Runs the scenario's chains for `ms`; an op counts when it started and finished inside the window. */
async function runWindow(scenario: Scenario, ms: number, latencies: number[] | null): Promise<number> {
  const cpuBefore = process.cpuUsage();
  const stopAt = performance.now() + ms;
  const chain = async (worker: number) => {
    while (performance.now() < stopAt) {
      const begin = performance.now();
      await scenario.op(worker);
      const end = performance.now();
      if (latencies && end <= stopAt) latencies.push(end - begin);
    }
  };
  await Promise.all(Array.from({ length: scenario.workers }, (_, worker) => chain(worker)));
  const cpu = process.cpuUsage(cpuBefore);
  return (cpu.user + cpu.system) / 1000;
}

/** Warms every scenario up, then runs `rounds` rounds in which each scenario gets `roundMs`, in turn. */
export async function measureInterleaved(scenarios: readonly Scenario[], options: InterleaveOptions): Promise<Measurement[]> {
  for (const scenario of scenarios) await runWindow(scenario, options.warmupMs, null);
  const latencies = scenarios.map((): number[] => []);
  const cpuMs = scenarios.map(() => 0);
  for (let round = 0; round < options.rounds; round++) {
    for (const [index, scenario] of scenarios.entries()) {
      cpuMs[index] = (cpuMs[index] ?? 0) + (await runWindow(scenario, options.roundMs, latencies[index] ?? null));
    }
  }
  const seconds = (options.rounds * options.roundMs) / 1000;
  return scenarios.map((scenario, index) => {
    const sorted = (latencies[index] ?? []).sort((a, b) => a - b);
    return {
      workers: scenario.workers,
      ops: sorted.length,
      seconds,
      opsPerSecond: sorted.length / seconds,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      clientCpuMsPerOp: (cpuMs[index] ?? 0) / Math.max(1, sorted.length),
    };
  });
}
