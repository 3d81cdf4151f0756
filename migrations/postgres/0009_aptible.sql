-- Apps on Aptible (issue 12). A team connects to Aptible once: its access token is sealed by
-- the vault crate with the team's id as associated data, like every other secret. Aptible's
-- clients never refresh tokens, so the expiry is kept and shown, and an answer saying the
-- token is no longer valid marks the connection "reconnect needed".
CREATE TABLE team_platforms (
    team_id       BIGINT  NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL CHECK (kind IN ('aptible')),
    -- Who the token belongs to, as Aptible says (an e-mail), for the Platforms page.
    account       TEXT,
    token_sealed  TEXT    NOT NULL,
    token_key_id  TEXT    NOT NULL,
    expires_at    BIGINT,
    state         TEXT    NOT NULL CHECK (state IN ('connected', 'reconnect_needed')),
    last_error    TEXT,
    connected_by  BIGINT REFERENCES users(id) ON DELETE SET NULL,
    connected_at  BIGINT  NOT NULL,
    PRIMARY KEY (team_id, kind)
);
CREATE INDEX team_platforms_key ON team_platforms(token_key_id);

-- Where an app runs: 'local' (the engine on this host) or 'aptible' (an app of an Aptible
-- environment, found by handle when the app is created; its id is kept).
ALTER TABLE apps ADD COLUMN platform TEXT NOT NULL DEFAULT 'local';
ALTER TABLE apps ADD COLUMN aptible_environment TEXT;
ALTER TABLE apps ADD COLUMN aptible_app TEXT;
ALTER TABLE apps ADD COLUMN aptible_app_id BIGINT;
ALTER TABLE apps ADD COLUMN aptible_git_repo TEXT;
-- Verify an image against its registry before forwarding a deploy (1, the default), or not
-- (0: for registries only Aptible can reach; the deploy then records no digest).
ALTER TABLE apps ADD COLUMN aptible_verify_images BIGINT NOT NULL DEFAULT 1;

-- The operation Berth forwarded to Aptible, once posted: after a restart Berth polls it
-- again instead of posting twice.
ALTER TABLE operations ADD COLUMN remote_operation_id BIGINT;
