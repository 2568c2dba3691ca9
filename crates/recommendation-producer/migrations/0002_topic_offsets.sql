-- Where the output topics ended when a job first ran: a replica resuming the job reads its
-- messages back from there, so an experiment published by a replica that died before
-- recording it is marked PUBLISHED instead of being published again.
ALTER TABLE bulk_jobs ADD COLUMN topic_offsets jsonb;
