"""Slot.taken: whether a live appointment holds the slot, kept by PostgreSQL.

The patients' availability used to look up each open slot's appointments (an anti-join: 6,750 index probes for
a free week at 50 practitioners, most of the time page's first render). With the answer on the slot, carried in
the start-time index, a week is read from that index alone.

Kept exact whoever writes, the way the availability versions are (0006):
- An appointment that becomes live or stops being live, or moves, sets its slot's flag (AFTER ROW). "Live" is
  what Appointment.objects.live() says: any status but cancelled. The partial unique index on live appointments
  allows one per slot, so the one leaving frees the slot and the one arriving takes it.
- Only the triggers write the flag (BEFORE INSERT OR UPDATE on the slot): any other UPDATE keeps the flag the
  row has, so no write of a slot can store a stale value (a form or the admin saving a slot read before a booking,
  a hand-written UPDATE). Told apart by pg_trigger_depth(): the triggers write one level deeper than any
  statement. No lookup of the appointments per updated slot: bulk updates of slots (time off) stay as cheap as
  they were (a slot given a new key, never done by the application, is looked up).
- A new slot is free, unless a live appointment was written before it in the same transaction (foreign keys are
  checked at commit: a fixture or a restore listing appointments first): once per INSERT statement, one join.
- TRUNCATE of the appointments frees every slot.
Not deferred: the booking has its slot locked already (select_for_update), so the write waits for nothing.
"""

from django.conf import settings
from django.db import migrations, models

FORWARD = r"""
-- The slots booked so far, before the triggers below (which let only them write the flag).
UPDATE bookings_slot s SET taken = true
WHERE EXISTS (SELECT 1 FROM bookings_appointment a WHERE a.slot_id = s.id AND a.status <> 'cancelled');

CREATE FUNCTION bookings_slot_taken_kept() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- Free, unless a live appointment was written before it: bookings_new_slots_taken() below.
        NEW.taken := false;
    ELSIF pg_trigger_depth() = 1 THEN
        -- Written by a statement, not by the triggers below (which run one level deeper).
        IF NEW.id IS DISTINCT FROM OLD.id THEN
            -- A slot given another key: the appointments pointing to the new one say.
            NEW.taken := EXISTS (
                SELECT 1 FROM bookings_appointment a WHERE a.slot_id = NEW.id AND a.status <> 'cancelled'
            );
        ELSE
            NEW.taken := OLD.taken;
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER slot_taken_kept BEFORE INSERT OR UPDATE ON bookings_slot
    FOR EACH ROW EXECUTE FUNCTION bookings_slot_taken_kept();

-- Foreign keys are checked at commit (Django makes them deferrable), so in one transaction a live appointment may be
-- written before its slot (a fixture or a restore that writes appointments first): its trigger found no slot then.
-- Once per statement, as one join, so that generating thousands of slots costs one read, not one per slot.
CREATE FUNCTION bookings_new_slots_taken() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    held_id bigint;
BEGIN
    -- The new slots against the appointments only (an UPDATE ... FROM new_slots was planned as a join with the
    -- whole slot table: each batch of a bulk insert read every slot). Then each slot found, by its key.
    FOR held_id IN
        SELECT n.id FROM new_slots n
        WHERE EXISTS (SELECT 1 FROM bookings_appointment a WHERE a.slot_id = n.id AND a.status <> 'cancelled')
    LOOP
        UPDATE bookings_slot SET taken = true WHERE id = held_id;
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER slot_taken_when_inserted AFTER INSERT ON bookings_slot
    REFERENCING NEW TABLE AS new_slots
    FOR EACH STATEMENT EXECUTE FUNCTION bookings_new_slots_taken();

CREATE FUNCTION bookings_appointment_slot_taken() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    was_live boolean := TG_OP <> 'INSERT' AND OLD.status <> 'cancelled';
    is_live boolean := TG_OP <> 'DELETE' AND NEW.status <> 'cancelled';
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.slot_id = OLD.slot_id AND was_live = is_live THEN
        RETURN NULL;
    END IF;
    -- One live appointment per slot at most (appointment_one_live_per_slot): the one leaving frees its slot.
    IF was_live THEN
        UPDATE bookings_slot SET taken = false WHERE id = OLD.slot_id;
    END IF;
    IF is_live THEN
        UPDATE bookings_slot SET taken = true WHERE id = NEW.slot_id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER appointment_slot_taken AFTER INSERT OR UPDATE OF status, slot_id OR DELETE ON bookings_appointment
    FOR EACH ROW EXECUTE FUNCTION bookings_appointment_slot_taken();

CREATE FUNCTION bookings_every_slot_free() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE bookings_slot SET taken = false WHERE taken;
    RETURN NULL;
END $$;

CREATE TRIGGER appointment_truncated_slots_free AFTER TRUNCATE ON bookings_appointment
    FOR EACH STATEMENT EXECUTE FUNCTION bookings_every_slot_free();
"""

BACKWARD = r"""
DROP TRIGGER appointment_truncated_slots_free ON bookings_appointment;
DROP FUNCTION bookings_every_slot_free();
DROP TRIGGER appointment_slot_taken ON bookings_appointment;
DROP FUNCTION bookings_appointment_slot_taken();
DROP TRIGGER slot_taken_when_inserted ON bookings_slot;
DROP FUNCTION bookings_new_slots_taken();
DROP TRIGGER slot_taken_kept ON bookings_slot;
DROP FUNCTION bookings_slot_taken_kept();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("bookings", "0025_slot_blocked_starts_at_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="slot",
            name="slot_open_starts_at_idx",
        ),
        migrations.AddField(
            model_name="slot",
            name="taken",
            field=models.BooleanField(db_default=False, default=False, editable=False),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
        migrations.AddIndex(
            model_name="slot",
            index=models.Index(
                condition=models.Q(("state", "open")),
                fields=["starts_at"],
                include=("practitioner", "id", "taken"),
                name="slot_open_starts_at_idx",
            ),
        ),
    ]
