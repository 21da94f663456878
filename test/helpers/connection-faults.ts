// Faults of the connection, injected by a test's kysely plugin on the real database: what pg throws when a connection
// drops, and how to recognise the reply whose loss is the interesting case.

import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';

/** What pg throws when the connection resets (mid-statement, or between COMMIT and its reply). */
export function connectionReset(): Error {
  return Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
}

/** The reply of one supervisor's full save point: exactly one row, its id and the new checkpoint's seq. */
export function isSingleFullSaveReply(result: QueryResult<UnknownRow>): boolean {
  const [row] = result.rows;
  return result.rows.length === 1 && row !== undefined && Object.keys(row).join(',') === 'id,seq';
}

/** What pg throws when nothing listens (the database is down): the statement never reached the server. */
export function connectionRefused(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
}

/**
 * A test's kysely plugin around the next full save point of one supervisor, once armed: with `loseReply` (the default)
 * its reply is lost after it committed (what pg throws when the connection resets), and then the next
 * `outageAfterSave` statements are refused before they reach the server (the database is down).
 */
export class NextSaveFault implements KyselyPlugin {
  armed = false;
  loseReply = true;
  /** Replies lost so far. */
  lost = 0;
  outageAfterSave = 0;
  private down = 0;
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    if (this.down > 0) {
      this.down -= 1;
      throw connectionRefused();
    }
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    if (this.armed && isSingleFullSaveReply(args.result)) {
      this.armed = false;
      this.down = this.outageAfterSave;
      if (this.loseReply) {
        this.lost += 1;
        throw connectionReset();
      }
    }
    return args.result;
  }
}

/** A full save point's reply, of one supervisor or a group: rows of id and seq. */
export function isFullSaveReply(result: QueryResult<UnknownRow>): boolean {
  return result.rows.length > 0 && result.rows.every((row) => Object.keys(row).join(',') === 'id,seq');
}

/**
 * A test's kysely plugin that, while closed, holds full save points' replies (after they committed) until `open()`:
 * group commit then has statements in flight, and what arrives meanwhile queues for the next statement.
 */
export class SaveReplyGate implements KyselyPlugin {
  /** Replies held now. */
  held = 0;
  private gate: Promise<void> | null = null;
  private release: () => void = () => {};
  close(): void {
    this.gate ??= new Promise<void>((resolve) => (this.release = resolve));
  }
  open(): void {
    this.release();
    this.gate = null;
  }
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    if (this.gate && isFullSaveReply(args.result)) {
      this.held += 1;
      await this.gate;
      this.held -= 1;
    }
    return args.result;
  }
}
