// Small builders for test data, so tests state only what they are about.

import { randomUUID } from 'node:crypto';
import type { PendingQuestion } from '../../src/domain/pending-question.js';
import type { FullSaveInput } from '../../src/persistence/supervisor-repository.js';

export function question(id: string, overrides: Partial<PendingQuestion> = {}): PendingQuestion {
  return {
    id,
    question: `Question ${id}?`,
    choices: null,
    context: null,
    askedAt: '2026-11-24T10:00:00.000Z',
    deliveryCount: 1,
    lastDeliveredAt: '2026-11-24T10:00:00.000Z',
    ...overrides,
  };
}

export function fullSave(overrides: Partial<FullSaveInput> = {}): FullSaveInput {
  const supervisorId = overrides.supervisorId ?? randomUUID();
  return {
    supervisorId,
    name: 'test supervisor',
    state: 'working',
    phase: 'planning',
    currentActivity: 'thinking',
    progress: 10,
    errorMessage: null,
    spawnedTaskIds: [],
    pendingQuestions: [],
    restorationCount: 0,
    lastRestoredAt: null,
    restorationSource: null,
    lastHeartbeat: null,
    conversationLength: 0,
    snapshot: { status: 'active', value: overrides.state ?? 'working', context: { supervisorId } },
    machineVersion: 1,
    step: 1,
    reason: 'test',
    ...overrides,
  };
}
