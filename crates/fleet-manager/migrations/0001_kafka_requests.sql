-- Kafka instance requests. A row is soft-deleted (deleted_at) once its data-plane objects are
-- gone; names are unique among the live rows of one scope (an organisation, or a user with
-- none), enforced by the partial index rather than by a check before the insert.
CREATE TABLE kafka_requests (
    id                       text PRIMARY KEY,
    name                     text NOT NULL,
    owner                    text NOT NULL,
    organisation_id          text,
    scope                    text NOT NULL,
    quota_scope              text NOT NULL,
    cloud_provider           text NOT NULL,
    region                   text NOT NULL,
    multi_az                 boolean NOT NULL,
    instance_type            text NOT NULL,
    size_id                  text NOT NULL,
    billing_model            text NOT NULL,
    quota_consumed           integer NOT NULL,
    capacity_consumed        integer NOT NULL,
    reauthentication_enabled boolean NOT NULL,
    status                   text NOT NULL,
    failed_reason            text,
    cluster_id               text,
    bootstrap_server_host    text,
    kafka_version            text,
    strimzi_version          text,
    created_at               timestamptz NOT NULL,
    updated_at               timestamptz NOT NULL,
    status_changed_at        timestamptz NOT NULL,
    expires_at               timestamptz,
    deleted_at               timestamptz
);

CREATE UNIQUE INDEX kafka_requests_live_name ON kafka_requests (scope, name) WHERE deleted_at IS NULL;
CREATE INDEX kafka_requests_live_status ON kafka_requests (status, created_at) WHERE deleted_at IS NULL;
CREATE INDEX kafka_requests_live_quota ON kafka_requests (quota_scope, instance_type) WHERE deleted_at IS NULL;
CREATE INDEX kafka_requests_live_scope ON kafka_requests (scope, name) WHERE deleted_at IS NULL;

-- One row per worker type: the replica that holds it runs that worker until `expires`.
CREATE TABLE leader_leases (
    lease_type text PRIMARY KEY,
    leader     text NOT NULL DEFAULT '',
    expires    timestamptz NOT NULL DEFAULT 'epoch',
    deleted_at timestamptz
);
