-- Claims look at each lane's oldest pending jobs: one index seek per lane, however long
-- the backlog.
CREATE INDEX jobs_lane ON jobs (lane, status, id);
