// Typed reads and writes of supervisor state: each function is one SQL statement (one round trip) unless it says otherwise.
// The code lives in ./supervisors/, one operation (or one tight group) per file; this barrel keeps the one import path.

export {
  StaleWriteError,
  type CheckpointRecord,
  type DetailedStateUpdate,
  type Executor,
  type FullSaveInput,
  type ForkedTask,
  type ForkOrigin,
  type FullSaveResult,
  type HeartbeatUpdate,
  type ListSupervisorsOptions,
  type MessageRecord,
  type MessageWrite,
  type OutboxWrite,
  type PendingQuestionsSummary,
  type QuestionRecord,
  type QuestionWrite,
  type RestorationMark,
  type SpawnedTaskValidation,
  type SupervisorDetailedState,
  type TaskRecord,
  type TaskWrite,
} from './supervisors/records.js';
export { saveSupervisorStateFull, saveSupervisorStatesFull, type FullSaveOutcome } from './supervisors/save-supervisor-state-full.js';
export { getQuestion, getQuestions, listPendingQuestions, listPendingQuestionsOf, listQuestions } from './supervisors/questions.js';
export {
  updateSupervisorHeartbeats,
  updateSupervisorHeartbeatState,
  type HeartbeatOutcome,
  type HeartbeatWrite,
} from './supervisors/update-supervisor-heartbeat-state.js';
export {
  getSupervisorState,
  getSupervisorStateForRestoration,
  getSupervisorStatesForRestoration,
  getSupervisorsWithPendingQuestions,
  listRestorableSupervisorIds,
  listSupervisorOwners,
  listSupervisors,
} from './supervisors/read-supervisor-state.js';
export { getTask, listOpenSupervisorTasks, listOpenTasksOfSupervisors, listSupervisorTasks, recordTaskOutcome, validateSpawnedTasks } from './supervisors/tasks.js';
export { getCheckpoint, getNewestCheckpointBefore, listCheckpoints, pruneCheckpoints } from './supervisors/checkpoints.js';
export { countConversation, countConversations, getConversation } from './supervisors/conversation.js';
export { quarantineSupervisorRow } from './supervisors/quarantine.js';
export { enqueueOutbox } from './supervisors/enqueue-outbox.js';
export { getForkLineage, type ForkLineage, type ForkRecord } from './supervisors/forks.js';
export { getMessage, listMessages } from './supervisors/messages.js';
