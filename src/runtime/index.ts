export * from './agent-driver.js';
export { createScriptedDriver, type ScriptedDriverOptions } from './scripted-driver.js';
export { buildForkContextMessage, type ForkedTask, type ForkInput } from './fork.js';
export { DurableSupervisor, type CommittedStep, type SaveRetryPolicy } from './durable-supervisor.js';
export * from './errors.js';
export { createRuntimeInspector, type InspectOption } from './inspection.js';
export { createLogger, silentLogger, type Logger, type LoggerOptions } from './logger.js';
export { createRegistryStore, type RegistryEntry, type RegistryStore } from './registry.js';
export { RestorationFailedError, type RestoreAllSummary, type RestoreOptions } from './restoration.js';
export { type Messaging, type MessagingOptions } from './messaging.js';
export {
  addSupervisorPendingQuestion,
  addSupervisorSpawnedTask,
  markSupervisorRestored,
  removeSupervisorPendingQuestion,
  updateSupervisorDetailedState,
  updateSupervisorPhase,
  type OfflineEditOptions,
} from './offline-edits.js';
export { startOutboxRelay, type OutboxRelay, type OutboxRelayOptions } from './outbox-relay.js';
export { type InboundConsumers, type InboundConsumerStats, type InboundCounts } from './inbound-consumers.js';
export { startTaskWorker, type TaskWorker, type TaskWorkerOptions } from './task-worker.js';
export {
  createRuntime,
  defaultDaemonId,
  type RuntimeHealth,
  type RuntimeOptions,
  type RuntimeStartOptions,
  type RuntimeStats,
  type ForkResult,
  type SpawnInput,
  type SupervisorRuntime,
} from './supervisor-runtime.js';
export { DEFAULT_LEASE_SETTINGS, type LeaseSettings, type LeaseStats } from './lease-keeper.js';
export {
  createChatCompletionsClient,
  type AssistantReply,
  type ChatCompletionsClient,
  type ChatCompletionsClientOptions,
  type ChatMessage,
  type ChatTool,
  type ChatToolCall,
  type JsonSchema,
} from './llm/chat-completions-client.js';
export * from './llm/llm-errors.js';
export { createOpenAiDriver, OPENAI_DRIVER_NAME, type OpenAiDriverOptions } from './llm/openai-driver.js';
export { SUPERVISOR_TOOLS } from './llm/supervisor-tools.js';
