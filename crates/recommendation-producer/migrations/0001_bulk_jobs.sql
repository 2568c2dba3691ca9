-- Bulk jobs and their experiments. A job runs under a lease (lease_owner, lease_until): a
-- replica claims an IN_PROGRESS job whose lease is free or expired (FOR UPDATE SKIP LOCKED)
-- and renews it while it works, so a job whose replica died is picked up by another.
CREATE TABLE bulk_jobs (
    job_id                 uuid PRIMARY KEY,
    status                 text NOT NULL,
    payload                jsonb NOT NULL,
    total_experiments      integer,
    processed_experiments  integer NOT NULL DEFAULT 0,
    notifications          jsonb NOT NULL DEFAULT '{}',
    webhook                jsonb,
    start_time             timestamptz NOT NULL DEFAULT now(),
    end_time               timestamptz,
    lease_owner            text,
    lease_until            timestamptz,
    summary_published      boolean NOT NULL DEFAULT false
);
CREATE INDEX bulk_jobs_status ON bulk_jobs (status, start_time);

CREATE TABLE bulk_experiments (
    job_id           uuid NOT NULL REFERENCES bulk_jobs ON DELETE CASCADE,
    name             text NOT NULL,
    namespace        text NOT NULL,
    workload         text NOT NULL,
    workload_type    text NOT NULL,
    container        text NOT NULL,
    image            text NOT NULL,
    status           text NOT NULL,
    status_history   jsonb NOT NULL DEFAULT '[]',
    notifications    jsonb,
    recommendations  jsonb,
    updated          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, name)
);
CREATE INDEX bulk_experiments_name ON bulk_experiments (name, updated DESC);
