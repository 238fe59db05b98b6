-- Event payloads are stored without compression. A lineage batch's
-- `storage.object_created` event lists every stored object of the batch (about 130 bytes
-- each, 5,000 in an epoch of a busy step): compressing that value cost its COPY a fifth of
-- its time (bench/lineage.py: 7.6 -> 6.1 us a row on the server) to save about 30 bytes a
-- row, a tenth of what the lineage row itself takes. Large values still go out of line.
ALTER TABLE events ALTER COLUMN payload SET STORAGE EXTERNAL;
