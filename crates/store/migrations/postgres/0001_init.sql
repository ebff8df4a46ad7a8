-- slatis-sync schema (PostgreSQL): the same tables as SQLite's, shared by every replica.

-- One row per accepted delivery from Slatis.
CREATE TABLE events (
    id          TEXT PRIMARY KEY,            -- evt_<uuid v7>
    tenant      TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    booking_id  TEXT,
    body        BYTEA NOT NULL,              -- the raw body, exactly as signed
    received_at TIMESTAMPTZ NOT NULL,
    jobs        INTEGER NOT NULL             -- how many jobs it made (0 = unrouted)
);
CREATE INDEX events_received ON events (received_at);
CREATE INDEX events_tenant ON events (tenant, received_at);

-- A Slatis retry of the same body finds its first delivery here.
CREATE TABLE dedupe_keys (
    tenant     TEXT NOT NULL,
    key        BYTEA NOT NULL,               -- SHA-256 of the raw body
    event_id   TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE INDEX dedupe_created ON dedupe_keys (created_at);

-- One job per (event, connector instance): the instance's steps, run in order.
CREATE TABLE jobs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- also the arrival order
    event_id     TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    tenant       TEXT NOT NULL,
    connector    TEXT NOT NULL,
    lane         TEXT NOT NULL,              -- tenant/connector: rate limits and fairness
    order_key    TEXT NOT NULL,              -- lane/booking: jobs of one key run in id order
    status       TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'dead')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    rate_limited INTEGER NOT NULL DEFAULT 0,
    run_at       TIMESTAMPTZ NOT NULL,
    lease_owner  TEXT,
    lease_until  TIMESTAMPTZ,
    steps_done   INTEGER NOT NULL DEFAULT 0,
    step_results JSONB NOT NULL DEFAULT '{}', -- step id -> {id, created}
    dry_run      JSONB,                      -- the requests a dry run recorded
    last_error   TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
-- Claims look at each lane's oldest pending jobs: one index seek per lane.
CREATE INDEX jobs_lane ON jobs (lane, status, id);
CREATE INDEX jobs_due ON jobs (status, run_at);
-- Order: is an earlier job of this booking unfinished?
CREATE INDEX jobs_order ON jobs (order_key, id) WHERE status IN ('pending', 'running');
CREATE INDEX jobs_event ON jobs (event_id);
-- Lapsed leases are found without a scan.
CREATE INDEX jobs_lease ON jobs (lease_until) WHERE status = 'running';

-- Every try of every job.
CREATE TABLE attempts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    outcome     TEXT NOT NULL,               -- done | retry | rate_limited | dead | released
    step        INTEGER,                     -- the step that failed
    error       TEXT,
    retry_at    TIMESTAMPTZ
);
CREATE INDEX attempts_job ON attempts (job_id);

-- Which CRM record each `match` resolved to.
CREATE TABLE record_map (
    tenant     TEXT NOT NULL,
    connector  TEXT NOT NULL,
    object     TEXT NOT NULL,
    property   TEXT NOT NULL,
    value      TEXT NOT NULL,
    record_id  TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant, connector, object, property, value)
);
CREATE INDEX record_map_age ON record_map (updated_at);

-- Connector rate windows shared by the replicas: one row per send slot taken, by window
-- (`tenant/instance/all`, `…/search`); rows older than the window are deleted as new ones
-- are taken.
CREATE TABLE rate_slots (
    key TEXT NOT NULL,
    at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX rate_slots_key_at ON rate_slots (key, at DESC);
