// Ownership of supervisors by daemons: membership leases, claims with fencing epochs, and the inbox.

export * from './claims.js';
export * from './dead-letters.js';
export * from './errors.js';
export * from './inbox.js';
export * from './memberships.js';
