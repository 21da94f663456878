// GET /metrics: Prometheus exposition of what the runtime did, behind the token.

import { describe, expect, it } from 'vitest';
import { createApiServer } from '../../src/api/server.js';
import { createRuntime } from '../../src/runtime/supervisor-runtime.js';
import { databaseTargets, useIsolatedDatabase } from '../helpers/databases.js';

/** The value of one sample: the metric name and every label given must match. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`))) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

for (const target of await databaseTargets()) {
  describe(`GET /metrics on ${target.name}`, () => {
    const database = useIsolatedDatabase(target);

    it('counts save points by reason with their latency, supervisors by state, the outbox backlog and the database; needs the token', async () => {
      const runtime = createRuntime({ database: database(), heartbeatIntervalMs: 0 });
      const app = await createApiServer(runtime, { token: 'secret' });
      try {
        const asking = await runtime.spawn({ name: 'asking' });
        const { questionId } = await runtime.askQuestion(asking.id, { question: 'Ready?' });
        const working = await runtime.spawn({ name: 'working' });
        await runtime.send(working.id, { type: 'SET_ACTIVITY', activity: 'reading' });
        await runtime.answerQuestion(asking.id, questionId, 'yes');
        await runtime.spawnTask(asking.id, { description: 'build' });

        expect((await app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
        const response = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer secret' } });
        expect(response.statusCode).toBe(200);
        expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
        const text = response.body;

        const daemon = runtime.daemonId;
        expect(sample(text, 'supervisor_runtime_supervisors', { daemon, state: 'waiting_for_tasks' })).toBe(1);
        expect(sample(text, 'supervisor_runtime_supervisors', { state: 'working' })).toBe(1);
        expect(sample(text, 'supervisor_runtime_supervisors', { state: 'failed' })).toBe(0);
        expect(sample(text, 'supervisor_runtime_save_points_total', { kind: 'full', reason: 'question_asked' })).toBe(1);
        expect(sample(text, 'supervisor_runtime_save_points_total', { kind: 'full', reason: 'question_answered' })).toBe(1);
        expect(sample(text, 'supervisor_runtime_save_points_total', { kind: 'full', reason: 'task_spawned' })).toBe(1);
        // Two creations and two STARTs were full save points too; SET_ACTIVITY into working changed state, so full.
        expect(sample(text, 'supervisor_runtime_save_point_seconds_count', { kind: 'full' })).toBe(8);
        expect(sample(text, 'supervisor_runtime_save_point_seconds_bucket', { kind: 'full', le: '+Inf' })).toBe(8);
        expect(sample(text, 'supervisor_runtime_save_statements_total', { kind: 'full' })).toBeGreaterThanOrEqual(1);
        expect(sample(text, 'supervisor_runtime_save_points_waiting', { kind: 'full' })).toBe(0);
        // No transport, so no relay: every outbox row (question, task spawn, state changes) is still waiting.
        expect(sample(text, 'supervisor_runtime_outbox_unsent')).toBeGreaterThanOrEqual(2);
        expect(sample(text, 'supervisor_runtime_outbox_oldest_unsent_seconds')).toBeGreaterThanOrEqual(0);
        expect(sample(text, 'supervisor_runtime_dead_letters')).toBe(0);
        expect(sample(text, 'supervisor_runtime_database_up')).toBe(1);
        expect(sample(text, 'supervisor_runtime_process_resident_memory_bytes')).toBeGreaterThan(0);
        expect(text).toContain('# HELP supervisor_runtime_save_point_seconds ');
      } finally {
        await app.close();
        await runtime.shutdown({ closeDatabase: false });
      }
    });
  });
}
