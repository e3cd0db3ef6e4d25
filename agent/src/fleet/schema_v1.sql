-- airlock fleet schema, version 1. Run by `airlock fleet migrate` as the
-- database's owner, in one transaction; docs/fleet.md explains each part.

DO $$
BEGIN
    -- Group roles: login roles are made members (docs/fleet.md).
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'airlock_host') THEN
        CREATE ROLE airlock_host NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'airlock_reader') THEN
        CREATE ROLE airlock_reader NOLOGIN;
    END IF;
END
$$;

-- One row per hash chain: who ships it, and how far it has come.
CREATE TABLE airlock_trails (
    trail        text PRIMARY KEY CHECK (trail ~ '^[0-9a-f]{32}$'),
    owner        name NOT NULL DEFAULT session_user,
    host         text NOT NULL,
    machine_id   text,
    registered   timestamptz NOT NULL DEFAULT now(),
    shipped_seq  bigint NOT NULL DEFAULT 0,
    shipped_hash text,
    shipped_at   timestamptz
);

-- Every record, as its line was sealed (the hash covers these bytes), and
-- as jsonb for queries.
CREATE TABLE airlock_records (
    trail  text NOT NULL REFERENCES airlock_trails (trail),
    seq    bigint NOT NULL,
    line   text NOT NULL,
    record jsonb GENERATED ALWAYS AS (line::jsonb) STORED,
    PRIMARY KEY (trail, seq),
    CHECK ((record ->> 'seq')::bigint = seq),
    CHECK (coalesce(record -> 'origin' ->> 'trail', trail) = trail)
);
CREATE INDEX airlock_records_sessions ON airlock_records (trail, (record ->> 'id'))
    WHERE record ->> 'kind' = 'session';

-- Exchanges joined (session, request and response) and every other record,
-- one row each, with the columns searches filter on.
CREATE TABLE airlock_exchanges (
    trail        text NOT NULL REFERENCES airlock_trails (trail),
    first_seq    bigint NOT NULL,
    last_seq     bigint NOT NULL,
    id           text,
    ts           timestamptz,
    host         text NOT NULL,
    kind         text NOT NULL,
    comm         text,
    uid          bigint,
    username     text,
    upn          text,
    oid          text,
    operation    text,
    decision     text,
    status       integer,
    request_host text,
    record       jsonb NOT NULL,
    PRIMARY KEY (trail, first_seq)
);
CREATE INDEX airlock_exchanges_ts ON airlock_exchanges (ts);
CREATE INDEX airlock_exchanges_host ON airlock_exchanges (host, ts);
CREATE INDEX airlock_exchanges_id ON airlock_exchanges (trail, id);
CREATE INDEX airlock_exchanges_operation ON airlock_exchanges (operation, ts);
CREATE INDEX airlock_exchanges_upn ON airlock_exchanges (upn, ts);
CREATE INDEX airlock_exchanges_oid ON airlock_exchanges (oid, ts);
CREATE INDEX airlock_exchanges_comm ON airlock_exchanges (comm, ts);
CREATE INDEX airlock_exchanges_decision ON airlock_exchanges (decision, ts);

-- Where a shipped chain did not verify as it was shipped.
CREATE TABLE airlock_chain_breaks (
    trail  text NOT NULL REFERENCES airlock_trails (trail),
    seq    bigint NOT NULL,
    reason text NOT NULL,
    found  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (trail, seq)
);

-- Hosts insert their own trails and read back only their own (to resume);
-- records are never updated; readers read everything.
GRANT SELECT ON airlock_schema TO airlock_host, airlock_reader;
GRANT SELECT, INSERT, UPDATE (shipped_seq, shipped_hash, shipped_at) ON airlock_trails TO airlock_host;
GRANT SELECT, INSERT ON airlock_records TO airlock_host;
GRANT SELECT, INSERT, UPDATE ON airlock_exchanges TO airlock_host;
GRANT SELECT, INSERT ON airlock_chain_breaks TO airlock_host;
GRANT SELECT ON airlock_trails, airlock_records, airlock_exchanges, airlock_chain_breaks TO airlock_reader;

ALTER TABLE airlock_trails ENABLE ROW LEVEL SECURITY;
ALTER TABLE airlock_records ENABLE ROW LEVEL SECURITY;
ALTER TABLE airlock_exchanges ENABLE ROW LEVEL SECURITY;
ALTER TABLE airlock_chain_breaks ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_trail ON airlock_trails TO airlock_host
    USING (owner = session_user) WITH CHECK (owner = session_user);
CREATE POLICY own_trail ON airlock_records TO airlock_host
    USING (trail IN (SELECT t.trail FROM airlock_trails t WHERE t.owner = session_user))
    WITH CHECK (trail IN (SELECT t.trail FROM airlock_trails t WHERE t.owner = session_user));
CREATE POLICY own_trail ON airlock_exchanges TO airlock_host
    USING (trail IN (SELECT t.trail FROM airlock_trails t WHERE t.owner = session_user))
    WITH CHECK (trail IN (SELECT t.trail FROM airlock_trails t WHERE t.owner = session_user));
CREATE POLICY own_trail ON airlock_chain_breaks TO airlock_host
    USING (trail IN (SELECT t.trail FROM airlock_trails t WHERE t.owner = session_user))
    WITH CHECK (trail IN (SELECT t.trail FROM airlock_trails t WHERE t.owner = session_user));
CREATE POLICY read_all ON airlock_trails FOR SELECT TO airlock_reader USING (true);
CREATE POLICY read_all ON airlock_records FOR SELECT TO airlock_reader USING (true);
CREATE POLICY read_all ON airlock_exchanges FOR SELECT TO airlock_reader USING (true);
CREATE POLICY read_all ON airlock_chain_breaks FOR SELECT TO airlock_reader USING (true);
