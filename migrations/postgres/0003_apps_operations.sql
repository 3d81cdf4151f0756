-- Apps, their configuration and releases, and the operations that change them.

CREATE TABLE apps (
    id                        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id                   BIGINT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    handle                    TEXT    NOT NULL,
    method                    TEXT    NOT NULL CHECK (method IN ('image', 'dockerfile')),
    health_path               TEXT,
    -- Registry credentials remembered on the app (given with a deploy, "remember for this
    -- app"). The password is sealed by the vault crate with the app's id as associated data.
    remembered_registry       TEXT,
    remembered_username       TEXT,
    remembered_secret_sealed  TEXT,
    remembered_secret_key_id  TEXT,
    remembered_at             BIGINT,
    -- The team credential the app's last deploy used: "used by N apps" on the credential.
    -- Deleting the credential leaves the app to its remembered credentials.
    team_credential_id        BIGINT REFERENCES registry_credentials(id) ON DELETE SET NULL,
    -- The release that should serve (desired state; start-up brings it back).
    current_release_id        BIGINT,
    created_by                BIGINT REFERENCES users(id) ON DELETE SET NULL,
    created_at                BIGINT NOT NULL,
    updated_at                BIGINT NOT NULL,
    UNIQUE (team_id, handle)
);
CREATE INDEX apps_team_credential ON apps(team_credential_id);
-- Partial: only apps that remember a secret have a key id to rotate.
CREATE INDEX apps_remembered_key ON apps(remembered_secret_key_id)
    WHERE remembered_secret_key_id IS NOT NULL;

-- Configuration variables. Every value is sealed (any of them may be a secret); the
-- associated data is the app id and the key.
CREATE TABLE app_config (
    app_id        BIGINT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    key           TEXT    NOT NULL,
    value_sealed  TEXT    NOT NULL,
    value_key_id  TEXT    NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (app_id, key)
);
CREATE INDEX app_config_key ON app_config(value_key_id);

CREATE TABLE releases (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id        BIGINT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    operation_id  BIGINT NOT NULL,
    image         TEXT    NOT NULL,
    digest        TEXT    NOT NULL,
    port          BIGINT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX releases_app ON releases(app_id, id);

CREATE TABLE operations (
    id                        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id                   BIGINT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    app_id                    BIGINT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    kind                      TEXT    NOT NULL CHECK (kind IN ('deploy', 'configure', 'restart')),
    status                    TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    -- The image as named and the digest it resolved to before queuing.
    image                     TEXT,
    digest                    TEXT,
    git_ref                   TEXT,
    commit_sha                TEXT,
    -- none | team | given | remembered; never a value.
    credential_source         TEXT    NOT NULL DEFAULT 'none' CHECK (credential_source IN ('none', 'team', 'given', 'remembered')),
    credential_id             BIGINT REFERENCES registry_credentials(id) ON DELETE SET NULL,
    credential_name           TEXT,
    credential_version        BIGINT,
    -- The credentials this operation pulls with, sealed with the operation's id, kept only
    -- until it finishes (so "this deploy only" credentials are used once, then discarded).
    registry_username         TEXT,
    registry_secret_sealed    TEXT,
    registry_secret_key_id    TEXT,
    -- Configuration changes applied with the operation: names (JSON object key -> "set" |
    -- "unset") for history, values sealed and discarded when it finishes.
    env_keys                  TEXT,
    env_sealed                TEXT,
    env_key_id                TEXT,
    requested_by              BIGINT REFERENCES users(id) ON DELETE SET NULL,
    created_at                BIGINT NOT NULL,
    started_at                BIGINT,
    finished_at               BIGINT,
    error                     TEXT,
    -- The step running now (verify, pull, start, health_check, switch).
    step                      TEXT,
    release_id                BIGINT,
    -- The worker holding the operation and until when; a lease that is not renewed
    -- (its process died) is taken over.
    lease_owner               TEXT,
    lease_expires_at          BIGINT
);
-- One running operation per app: the database itself serialises an app's operations.
CREATE UNIQUE INDEX operations_one_running_per_app ON operations(app_id) WHERE status = 'running';
CREATE INDEX operations_queue ON operations(status, id);
CREATE INDEX operations_app ON operations(app_id, id);
CREATE INDEX operations_app_kind ON operations(app_id, kind, id);
CREATE INDEX operations_app_status ON operations(app_id, status, id);
CREATE INDEX operations_team ON operations(team_id, id);
CREATE INDEX operations_team_kind ON operations(team_id, kind, id);
CREATE INDEX operations_team_status ON operations(team_id, status, id);
CREATE INDEX operations_team_user ON operations(team_id, requested_by, id);
CREATE INDEX operations_app_user ON operations(app_id, requested_by, id);
-- The history chart: operations per day since a date.
CREATE INDEX operations_team_created ON operations(team_id, created_at);
CREATE INDEX operations_app_created ON operations(app_id, created_at);
-- Partial: per-operation secrets are erased when the operation finishes, so nearly every
-- row has no key id, and rotation only looks for the few that do.
CREATE INDEX operations_registry_key ON operations(registry_secret_key_id)
    WHERE registry_secret_key_id IS NOT NULL;
CREATE INDEX operations_env_key ON operations(env_key_id) WHERE env_key_id IS NOT NULL;

CREATE TABLE operation_logs (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operation_id  BIGINT NOT NULL REFERENCES operations(id) ON DELETE CASCADE,
    at            BIGINT NOT NULL,
    line          TEXT    NOT NULL
);
CREATE INDEX operation_logs_operation ON operation_logs(operation_id, id);
