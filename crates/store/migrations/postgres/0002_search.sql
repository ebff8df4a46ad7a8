-- The admin API searches by booking and by attendee email, pages by tenant and status,
-- and plots the last hour of attempts: an index for each. The email is kept trimmed
-- and lower-cased (as ingest stores it), back-filled from the stored bodies; a body that
-- PostgreSQL cannot read as JSON (e.g. one holding \u0000) is left without one.
ALTER TABLE events ADD COLUMN attendee_email TEXT;
CREATE FUNCTION pg_temp.attendee_email(body BYTEA) RETURNS TEXT LANGUAGE plpgsql AS $$
BEGIN
    RETURN NULLIF(lower(btrim(convert_from(body, 'UTF8')::jsonb #>> '{data,attendee,email}')), '');
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;
UPDATE events SET attendee_email = pg_temp.attendee_email(body)
 WHERE position('"attendee"'::bytea IN body) > 0;
-- booking search, the timeline, and "has tenant T an event of type E for booking B?"
CREATE INDEX events_booking ON events (booking_id, tenant, event_type);
CREATE INDEX events_email ON events (attendee_email, received_at);
CREATE INDEX jobs_tenant ON jobs (tenant, status, id);
CREATE INDEX attempts_finished ON attempts (finished_at);
