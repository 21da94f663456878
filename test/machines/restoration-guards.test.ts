// The restoration guards over a stored candidate, tested alone: each refusal names the field it found wrong and its value.

import { describe, expect, it } from 'vitest';
import { SUPERVISOR_MACHINE_VERSION, supervisorMachine } from '../../src/machines/index.js';
import { validateStoredState, type StoredStateCandidate } from '../../src/machines/restoration-guards.js';
import { apply, at, INPUT, initial } from './supervisor-fixtures.js';

/** A stored idle supervisor whose row columns agree with its snapshot; `snapshotProgress` overrides the snapshot's own. */
function storedIdle(rowProgress: unknown, snapshotProgress?: unknown): StoredStateCandidate {
  const idle = apply(initial(), { type: 'START', at: at(1) }).snapshot;
  const persisted = supervisorMachine.getPersistedSnapshot(idle) as unknown as { context: Record<string, unknown> };
  const snapshot = snapshotProgress === undefined ? persisted : { ...persisted, context: { ...persisted.context, progress: snapshotProgress } };
  return {
    supervisorId: INPUT.supervisorId,
    state: 'idle',
    progress: rowProgress,
    errorMessage: null,
    spawnedTaskIds: [],
    pendingQuestions: [],
    snapshot,
    machineVersion: SUPERVISOR_MACHINE_VERSION,
  };
}

describe('progressInRange', () => {
  it('passes a row and a snapshot that both hold a progress from 0 to 100', () => {
    const { result } = validateStoredState(storedIdle(0, 100), new Map());
    expect(result).toMatchObject({ valid: true, errors: [] });
  });

  it('a snapshot with progress 500 is reported as the snapshot, with 500, not as the row\'s progress', () => {
    const { result } = validateStoredState(storedIdle(0, 500), new Map());
    expect(result.valid).toBe(false);
    expect(result.errors).toEqual(['snapshot context.progress 500 is outside 0–100']);
  });

  it('a row column with progress 140 is reported as the row\'s progress, with 140', () => {
    const { result } = validateStoredState(storedIdle(140), new Map());
    expect(result.errors).toEqual(['progress 140 is outside 0–100']);
  });

  it('a progress that is not a whole number says so, with the value found', () => {
    expect(validateStoredState(storedIdle(12.5), new Map()).result.errors).toEqual(['progress 12.5 is not a whole number from 0 to 100']);
    expect(validateStoredState(storedIdle('50'), new Map()).result.errors).toEqual(['progress "50" is not a whole number from 0 to 100']);
  });
});

describe('interruptedAtSeq', () => {
  /** The stored idle supervisor, its snapshot's interruptedAtSeq set (or left out, as snapshots from before it have it). */
  function withInterruptedAtSeq(value: unknown): StoredStateCandidate {
    const stored = storedIdle(0);
    const snapshot = stored.snapshot as { context: Record<string, unknown> };
    return { ...stored, snapshot: { ...snapshot, context: { ...snapshot.context, interruptedAtSeq: value } } };
  }

  it('passes one that is absent, null, or a seq of the conversation (its length included: nothing arrived yet)', () => {
    const { snapshot } = storedIdle(0) as { snapshot: { context: Record<string, unknown> } };
    expect(snapshot.context).not.toHaveProperty('interruptedAtSeq');
    expect(snapshot.context.conversationLength).toBe(1);
    for (const value of [undefined, null, 0, 1]) expect(validateStoredState(withInterruptedAtSeq(value), new Map()).result).toMatchObject({ valid: true, errors: [] });
  });

  it('reports one past the conversation, negative or not a whole number, with the value and the range', () => {
    for (const value of [2, -1, 0.5, '1']) {
      expect(validateStoredState(withInterruptedAtSeq(value), new Map()).result.errors).toEqual([
        `snapshot context.interruptedAtSeq ${String(value)} is not a seq of its conversation (0–1)`,
      ]);
    }
  });
});

describe('held', () => {
  function withHeld(value: unknown): StoredStateCandidate {
    const stored = storedIdle(0);
    const snapshot = stored.snapshot as { context: Record<string, unknown> };
    return { ...stored, snapshot: { ...snapshot, context: { ...snapshot.context, held: value } } };
  }

  it('passes one that is absent (not held, as in snapshots from before it) or a boolean', () => {
    for (const value of [undefined, true, false]) expect(validateStoredState(withHeld(value), new Map()).result).toMatchObject({ valid: true, errors: [] });
  });

  it('reports one that is not a boolean, with the value', () => {
    expect(validateStoredState(withHeld('yes'), new Map()).result.errors).toEqual(['snapshot context.held "yes" is not a boolean']);
    expect(validateStoredState(withHeld(null), new Map()).result.errors).toEqual(['snapshot context.held null is not a boolean']);
  });
});
