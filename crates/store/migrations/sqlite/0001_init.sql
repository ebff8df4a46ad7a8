-- slatis-sync schema (SQLite). Times are Unix milliseconds (UTC).

-- One row per accepted delivery from Slatis.
CREATE TABLE events (
    id          TEXT PRIMARY KEY,            -- evt_<uuid v7>
    tenant      TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    booking_id  TEXT,
    body        BLOB NOT NULL,               -- the raw body, exactly as signed
    received_at INTEGER NOT NULL,
    jobs        INTEGER NOT NULL             -- how many jobs it made (0 = unrouted)
);
CREATE INDEX events_received ON events (received_at);
CREATE INDEX events_tenant ON events (tenant, received_at);

-- A Slatis retry of the same body finds its first delivery here.
CREATE TABLE dedupe_keys (
    tenant     TEXT NOT NULL,
    key        BLOB NOT NULL,                -- SHA-256 of the raw body
    event_id   TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, key)
) WITHOUT ROWID;
CREATE INDEX dedupe_created ON dedupe_keys (created_at);

-- One job per (event, connector instance): the instance's steps, run in order.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,   -- also the arrival order
    event_id     TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    tenant       TEXT NOT NULL,
    connector    TEXT NOT NULL,
    lane         TEXT NOT NULL,              -- tenant/connector: rate limits and fairness
    order_key    TEXT NOT NULL,              -- lane/booking: jobs of one key run in id order
    status       TEXT NOT NULL,              -- pending | running | done | dead
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_at       INTEGER NOT NULL,
    lease_owner  TEXT,
    lease_until  INTEGER,
    steps_done   INTEGER NOT NULL DEFAULT 0,
    step_results TEXT NOT NULL DEFAULT '{}', -- JSON: step id -> {id, created}
    dry_run      TEXT,                       -- JSON: the requests a dry run recorded
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX jobs_due ON jobs (status, run_at);
CREATE INDEX jobs_order ON jobs (order_key, id);
CREATE INDEX jobs_event ON jobs (event_id);

-- Every try of every job.
CREATE TABLE attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    outcome     TEXT NOT NULL,               -- done | retry | rate_limited | dead | released
    step        INTEGER,                     -- the step that failed
    error       TEXT,
    retry_at    INTEGER
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
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, connector, object, property, value)
) WITHOUT ROWID;
