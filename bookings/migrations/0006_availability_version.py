"""Availability versions: counters PostgreSQL bumps whenever what a patient may book changes.

The public time page is rendered once and served from memory until one of these counters
moves (clinic/page_cache.py). For that to be exact the counters are kept by triggers, in the
same transaction as the change, whichever code path writes: the booking services, reception,
the admin, generate_slots or a hand-written SQL statement.

One row per (UTC day of the slot's start, practitioner), so bookings with different
practitioners or on different days never wait for one another's counter. Row ('-infinity', 0)
is the practitioner list (names, order, who offers consultations) and anything the per-day
rows cannot describe (TRUNCATE).

Slots change in bulk (generate_slots, time off), so their trigger runs once per statement and
bumps each (day, practitioner) once, in key order. An appointment changes one row at a time
on the booking path, so its trigger is deferred to commit: the counter row stays locked only
while the transaction commits, not while it writes its history and outbox rows.
"""

from django.db import migrations

FORWARD = r"""
CREATE TABLE bookings_availabilityversion (
    day date NOT NULL,
    practitioner_id bigint NOT NULL,
    version bigint NOT NULL,
    PRIMARY KEY (day, practitioner_id)
);
INSERT INTO bookings_availabilityversion (day, practitioner_id, version) VALUES ('-infinity', 0, 1);

CREATE FUNCTION bookings_availability_bump(days date[], practitioners bigint[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO bookings_availabilityversion AS v (day, practitioner_id, version)
    SELECT DISTINCT d, p, 1 FROM unnest(days, practitioners) AS changed(d, p) ORDER BY 1, 2
    ON CONFLICT (day, practitioner_id) DO UPDATE SET version = v.version + 1;
$$;

CREATE FUNCTION bookings_slot_availability_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM bookings_availability_bump(
            array_agg((starts_at AT TIME ZONE 'UTC')::date), array_agg(practitioner_id)
        ) FROM new_slots;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM bookings_availability_bump(
            array_agg((starts_at AT TIME ZONE 'UTC')::date), array_agg(practitioner_id)
        ) FROM old_slots;
    ELSE
        PERFORM bookings_availability_bump(
            array_agg((changed.starts_at AT TIME ZONE 'UTC')::date), array_agg(changed.practitioner_id)
        )
        FROM (
            SELECT s.starts_at, s.practitioner_id
            FROM new_slots n JOIN old_slots o USING (id),
                 LATERAL (VALUES (n.starts_at, n.practitioner_id), (o.starts_at, o.practitioner_id))
                     AS s(starts_at, practitioner_id)
            WHERE (n.state, n.starts_at, n.ends_at, n.practitioner_id)
                  IS DISTINCT FROM (o.state, o.starts_at, o.ends_at, o.practitioner_id)
        ) AS changed;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER slot_availability_inserted AFTER INSERT ON bookings_slot
    REFERENCING NEW TABLE AS new_slots
    FOR EACH STATEMENT EXECUTE FUNCTION bookings_slot_availability_changed();
CREATE TRIGGER slot_availability_updated AFTER UPDATE ON bookings_slot
    REFERENCING NEW TABLE AS new_slots OLD TABLE AS old_slots
    FOR EACH STATEMENT EXECUTE FUNCTION bookings_slot_availability_changed();
CREATE TRIGGER slot_availability_deleted AFTER DELETE ON bookings_slot
    REFERENCING OLD TABLE AS old_slots
    FOR EACH STATEMENT EXECUTE FUNCTION bookings_slot_availability_changed();

CREATE FUNCTION bookings_appointment_availability_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Kept to plain statements: this runs in every booking's commit.
    IF TG_OP = 'UPDATE' THEN
        IF (NEW.status, NEW.slot_id) IS NOT DISTINCT FROM (OLD.status, OLD.slot_id) THEN
            RETURN NULL;
        END IF;
        IF NEW.slot_id IS DISTINCT FROM OLD.slot_id THEN
            PERFORM bookings_availability_bump(
                array_agg((s.starts_at AT TIME ZONE 'UTC')::date), array_agg(s.practitioner_id)
            )
            FROM bookings_slot s WHERE s.id IN (NEW.slot_id, OLD.slot_id);
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO bookings_availabilityversion AS v (day, practitioner_id, version)
    SELECT (s.starts_at AT TIME ZONE 'UTC')::date, s.practitioner_id, 1
    FROM bookings_slot s
    WHERE s.id = CASE WHEN TG_OP = 'DELETE' THEN OLD.slot_id ELSE NEW.slot_id END
    ON CONFLICT (day, practitioner_id) DO UPDATE SET version = v.version + 1;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER appointment_availability_changed
    AFTER INSERT OR UPDATE OR DELETE ON bookings_appointment
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION bookings_appointment_availability_changed();

-- The practitioner list is on every time page; TRUNCATE has no rows to say what it changed.
CREATE FUNCTION bookings_availability_bump_everything() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE bookings_availabilityversion SET version = version + 1
    WHERE day = '-infinity' AND practitioner_id = 0;
    RETURN NULL;
END $$;

CREATE TRIGGER practitioner_availability_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON bookings_practitioner FOR EACH STATEMENT EXECUTE FUNCTION bookings_availability_bump_everything();
CREATE TRIGGER slot_availability_truncated AFTER TRUNCATE
    ON bookings_slot FOR EACH STATEMENT EXECUTE FUNCTION bookings_availability_bump_everything();
CREATE TRIGGER appointment_availability_truncated AFTER TRUNCATE
    ON bookings_appointment FOR EACH STATEMENT EXECUTE FUNCTION bookings_availability_bump_everything();
"""

BACKWARD = r"""
DROP TRIGGER appointment_availability_truncated ON bookings_appointment;
DROP TRIGGER slot_availability_truncated ON bookings_slot;
DROP TRIGGER practitioner_availability_changed ON bookings_practitioner;
DROP FUNCTION bookings_availability_bump_everything();
DROP TRIGGER appointment_availability_changed ON bookings_appointment;
DROP FUNCTION bookings_appointment_availability_changed();
DROP TRIGGER slot_availability_deleted ON bookings_slot;
DROP TRIGGER slot_availability_updated ON bookings_slot;
DROP TRIGGER slot_availability_inserted ON bookings_slot;
DROP FUNCTION bookings_slot_availability_changed();
DROP FUNCTION bookings_availability_bump(date[], bigint[]);
DROP TABLE bookings_availabilityversion;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("bookings", "0005_outbound_message"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
