// A question the supervisor asked its human and is still waiting on.

export interface PendingQuestion {
  id: string;
  question: string;
  choices: string[] | null;
  context: string | null;
  /** ISO-8601 time the question was asked. */
  askedAt: string;
  /** How many times the question was delivered (asked = 1, each re-delivery adds 1). */
  deliveryCount: number;
  /** ISO-8601 time of the newest delivery. */
  lastDeliveredAt: string | null;
}

/** The first answer a question received; a second answer is refused and told this one. */
export interface AnsweredQuestion {
  id: string;
  question: string;
  answer: string;
  answeredAt: string;
}
