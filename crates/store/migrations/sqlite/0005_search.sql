-- The admin API searches by booking and by attendee email, pages by tenant and status,
-- and plots the last hour of attempts: an index for each. The email is kept trimmed
-- and lower-cased (as ingest stores it), back-filled from the stored bodies.
ALTER TABLE events ADD COLUMN attendee_email TEXT;
UPDATE events SET attendee_email = lower(trim(json_extract(CAST(body AS TEXT), '$.data.attendee.email')))
 WHERE json_valid(CAST(body AS TEXT))
   AND json_type(CAST(body AS TEXT), '$.data.attendee.email') = 'text'
   AND trim(json_extract(CAST(body AS TEXT), '$.data.attendee.email')) != '';
-- booking search, the timeline, and "has tenant T an event of type E for booking B?"
CREATE INDEX events_booking ON events (booking_id, tenant, event_type);
CREATE INDEX events_email ON events (attendee_email, received_at);
CREATE INDEX jobs_tenant ON jobs (tenant, status, id);
CREATE INDEX attempts_finished ON attempts (finished_at);
