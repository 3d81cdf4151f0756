-- Accounts, teams, memberships, invitations, API tokens and sign-in attempts.
-- Times are Unix milliseconds (UTC) in both databases, so that one set of queries serves both.

CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    -- NULL while an invited member has not yet chosen a password.
    password_hash TEXT,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE teams (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    handle     TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    -- Touched by every membership change: the write takes the team's row lock, which
    -- serialises concurrent "remove an owner" requests so the last owner cannot be removed.
    updated_at BIGINT  NOT NULL
);

CREATE TABLE memberships (
    team_id    BIGINT  NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id    BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role       TEXT    NOT NULL CHECK (role IN ('owner', 'deployer', 'viewer')),
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX memberships_user ON memberships(user_id);

CREATE TABLE invites (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash  TEXT    NOT NULL UNIQUE,
    user_id     BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    team_id     BIGINT  NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    created_by  BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    accepted_at BIGINT
);
CREATE INDEX invites_user ON invites(user_id);

CREATE TABLE api_tokens (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    -- SHA-256 of the token: tokens are long random strings, so a fast hash is enough and
    -- lets every API request look its token up by index.
    token_hash   TEXT    NOT NULL UNIQUE,
    prefix       TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id, created_at);

CREATE TABLE sign_in_attempts (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email        TEXT    NOT NULL,
    ip           TEXT    NOT NULL,
    attempted_at BIGINT  NOT NULL,
    succeeded    BIGINT  NOT NULL
);
CREATE INDEX sign_in_attempts_email ON sign_in_attempts(email, attempted_at);
CREATE INDEX sign_in_attempts_ip ON sign_in_attempts(ip, attempted_at);
