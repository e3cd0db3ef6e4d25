-- airlock fleet schema, version 2: approvals decided fleet-wide.
-- A host publishes each request it holds (airlock_holds); an approver's
-- role decides it (airlock_decisions, one per hold: the first stands);
-- NOTIFY tells the holding host at once.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'airlock_approver') THEN
        CREATE ROLE airlock_approver NOLOGIN;
    END IF;
END
$$;

CREATE TABLE airlock_holds (
    trail      text NOT NULL REFERENCES airlock_trails (trail),
    id         text NOT NULL,
    host       text NOT NULL,
    held_at    timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    -- The held request as the host's approvers see it (masked).
    request    jsonb NOT NULL,
    -- held, then how it ended on the host: approved, denied, expired,
    -- abandoned.
    state      text NOT NULL DEFAULT 'held',
    PRIMARY KEY (trail, id)
);
CREATE INDEX airlock_holds_open ON airlock_holds (held_at) WHERE state = 'held';

CREATE TABLE airlock_decisions (
    trail      text NOT NULL,
    id         text NOT NULL,
    decision   text NOT NULL CHECK (decision IN ('approve', 'deny')),
    -- At most a day, as a grant made on the host (approval's MAX_GRANT).
    window_s   bigint CHECK (window_s > 0 AND window_s <= 86400),
    scope      text,
    reason     text,
    -- Who decided: the database role (authenticated), and the OS user and
    -- host of the command (as it said).
    db_role    name NOT NULL DEFAULT session_user,
    os_user    text,
    os_uid     bigint,
    os_host    text,
    decided_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (trail, id),
    FOREIGN KEY (trail, id) REFERENCES airlock_holds (trail, id),
    CHECK (decision = 'approve' OR reason IS NOT NULL)
);

-- A decision needs a hold still open and not past its time.
CREATE FUNCTION airlock_decision_check() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM airlock_holds h WHERE h.trail = NEW.trail AND h.id = NEW.id
                   AND h.state = 'held' AND h.expires_at > now()) THEN
        RAISE EXCEPTION 'request % is no longer held', NEW.id USING ERRCODE = 'check_violation';
    END IF;
    PERFORM pg_notify('airlock_decisions', NEW.trail || ' ' || NEW.id);
    RETURN NEW;
END
$$;
CREATE TRIGGER airlock_decision_check BEFORE INSERT ON airlock_decisions
    FOR EACH ROW EXECUTE FUNCTION airlock_decision_check();

CREATE FUNCTION airlock_hold_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('airlock_holds', NEW.trail || ' ' || NEW.id);
    RETURN NEW;
END
$$;
CREATE TRIGGER airlock_hold_notify AFTER INSERT ON airlock_holds
    FOR EACH ROW EXECUTE FUNCTION airlock_hold_notify();

-- Hosts publish and settle their own holds and read the decisions on
-- them; they never decide. Approvers read holds and decide; they write
-- nothing else. Readers read.
GRANT SELECT, INSERT, UPDATE (state) ON airlock_holds TO airlock_host;
GRANT SELECT ON airlock_decisions TO airlock_host;
GRANT SELECT ON airlock_holds, airlock_decisions TO airlock_approver, airlock_reader;
GRANT INSERT (trail, id, decision, window_s, scope, reason, os_user, os_uid, os_host)
    ON airlock_decisions TO airlock_approver;
GRANT SELECT ON airlock_schema TO airlock_approver;

ALTER TABLE airlock_holds ENABLE ROW LEVEL SECURITY;
ALTER TABLE airlock_decisions ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_trail ON airlock_holds TO airlock_host
    USING (trail IN (SELECT t.trail FROM airlock_trails t WHERE t.owner = session_user))
    WITH CHECK (trail IN (SELECT t.trail FROM airlock_trails t WHERE t.owner = session_user));
CREATE POLICY own_trail ON airlock_decisions FOR SELECT TO airlock_host
    USING (trail IN (SELECT t.trail FROM airlock_trails t WHERE t.owner = session_user));
CREATE POLICY read_all ON airlock_holds FOR SELECT TO airlock_approver, airlock_reader USING (true);
CREATE POLICY read_all ON airlock_decisions FOR SELECT TO airlock_approver, airlock_reader USING (true);
CREATE POLICY decide ON airlock_decisions FOR INSERT TO airlock_approver
    WITH CHECK (db_role = session_user);
