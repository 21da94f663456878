-- Checkpoint snapshots are compressed with lz4 instead of pglz: every full save point writes one, and pglz was the
-- largest single cost of writing it (a tenth of the server's time in a profiled group commit); lz4 also reads back
-- faster when a restoration loads the snapshot. Rows written before keep pglz and stay readable. A server built
-- without lz4 (PGlite is one) keeps pglz.
DO $$
BEGIN
  ALTER TABLE supervisor_checkpoints ALTER COLUMN snapshot SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  RAISE NOTICE 'lz4 is not available on this server: checkpoint snapshots stay compressed with pglz';
END
$$;
