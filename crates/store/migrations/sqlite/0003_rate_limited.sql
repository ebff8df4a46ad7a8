-- Rate-limited answers do not use up attempts, so they get a budget of their own
-- (delivery.retry.max_rate_limited): how many a job has had. A replay resets it.
ALTER TABLE jobs ADD COLUMN rate_limited INTEGER NOT NULL DEFAULT 0;
