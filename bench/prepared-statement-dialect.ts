// A Kysely dialect over a pg pool that sends every statement as a named prepared statement (one name per SQL text),
// so the server parses a statement once per connection instead of once per call. Used to measure what parsing and
// planning the save point's statement costs; the project's PostgresDialect sends unnamed statements.

import { createHash } from 'node:crypto';
import {
  CompiledQuery,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type QueryResult,
} from 'kysely';
import type pg from 'pg';

function statementName(sqlText: string): string {
  return `sr_${createHash('sha1').update(sqlText).digest('hex').slice(0, 16)}`;
}

class PreparedConnection implements DatabaseConnection {
  constructor(readonly client: pg.PoolClient) {}

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.client.query({ name: statementName(compiled.sql), text: compiled.sql, values: [...compiled.parameters] });
    return {
      rows: result.rows as R[],
      ...(result.rowCount !== null && ['INSERT', 'UPDATE', 'DELETE', 'MERGE'].includes(result.command) ? { numAffectedRows: BigInt(result.rowCount) } : {}),
    };
  }

  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('the prepared-statement dialect does not stream');
  }
}

export function preparedStatementDialect(pool: pg.Pool): Dialect {
  const driver: Driver = {
    init: async () => undefined,
    acquireConnection: async () => new PreparedConnection(await pool.connect()),
    beginTransaction: async (connection) => {
      await connection.executeQuery(CompiledQuery.raw('begin'));
    },
    commitTransaction: async (connection) => {
      await connection.executeQuery(CompiledQuery.raw('commit'));
    },
    rollbackTransaction: async (connection) => {
      await connection.executeQuery(CompiledQuery.raw('rollback'));
    },
    releaseConnection: async (connection) => {
      (connection as PreparedConnection).client.release();
    },
    destroy: async () => undefined,
  };
  return {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => driver,
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  };
}
