-- Open sign-up with an SMTP server configured proves the address first (issue 11, finding 5):
-- a sign-up waits here until the link e-mailed to the address is opened, and only then
-- becomes an account. Nobody can hold an address they cannot read mail for.
CREATE TABLE pending_sign_ups (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    team_handle   TEXT    NOT NULL,
    team_name     TEXT    NOT NULL,
    token_hash    TEXT    NOT NULL UNIQUE,
    created_at    BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL
);
CREATE INDEX pending_sign_ups_email ON pending_sign_ups(email, created_at);
CREATE INDEX pending_sign_ups_expires ON pending_sign_ups(expires_at);
