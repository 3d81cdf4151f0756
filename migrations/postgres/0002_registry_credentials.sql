-- Team registry credentials and the audit trail.

CREATE TABLE registry_credentials (
    id                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id              BIGINT  NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name                 TEXT    NOT NULL,
    registry             TEXT    NOT NULL,
    kind                 TEXT    NOT NULL CHECK (kind IN ('basic', 'ecr')),
    username             TEXT    NOT NULL,
    -- Sealed by the vault crate with this row's id as associated data; never plaintext.
    secret_sealed        TEXT    NOT NULL,
    -- Which master key sealed it: lets start-up refuse a key that cannot open the secrets,
    -- and `berth rotate-key` find what is left to re-seal.
    secret_key_id        TEXT    NOT NULL,
    -- Bumped whenever the secret changes, so that history can say which version was used.
    secret_version       BIGINT  NOT NULL,
    note                 TEXT,
    created_by           BIGINT  REFERENCES users(id) ON DELETE SET NULL,
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL,
    last_verified_at     BIGINT,
    last_verified_ok     BIGINT,
    last_verified_detail TEXT,
    last_used_at         BIGINT,
    last_used_detail     TEXT,
    expires_at           BIGINT,
    UNIQUE (team_id, name)
);
CREATE INDEX registry_credentials_registry ON registry_credentials(team_id, registry);
CREATE INDEX registry_credentials_key ON registry_credentials(secret_key_id);

CREATE TABLE audit_events (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id   BIGINT  NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    actor_id  BIGINT  REFERENCES users(id) ON DELETE SET NULL,
    -- e.g. credential.create, credential.verify, credential.use, credential.delete
    action    TEXT    NOT NULL,
    -- what it was done to, e.g. "credential:ghcr"
    subject   TEXT    NOT NULL,
    outcome   TEXT    NOT NULL CHECK (outcome IN ('ok', 'failed')),
    detail    TEXT,
    at        BIGINT  NOT NULL
);
CREATE INDEX audit_events_team ON audit_events(team_id, id);
CREATE INDEX audit_events_subject ON audit_events(team_id, subject, id);
