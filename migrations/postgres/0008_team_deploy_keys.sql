-- Git over ssh: each team's deploy key (issue 11), an ed25519 pair Berth makes. The private
-- half is sealed by the vault crate with the team's id as associated data, like every other
-- secret; the public half and its SHA256 fingerprint are public (owners paste them into their
-- code host) and stored as they are. One key per team: a new one replaces it.
CREATE TABLE team_deploy_keys (
    team_id       BIGINT  PRIMARY KEY REFERENCES teams(id) ON DELETE CASCADE,
    -- One line of authorized_keys: `ssh-ed25519 AAAA… berth:<team>`.
    public_key    TEXT    NOT NULL,
    -- `SHA256:…`, as `ssh-keygen -l` prints it.
    fingerprint   TEXT    NOT NULL,
    secret_sealed TEXT    NOT NULL,
    -- Which master key sealed it (start-up checks, `berth rotate-key`).
    secret_key_id TEXT    NOT NULL,
    -- NULL when Berth made it for a fetch rather than at someone's request.
    created_by    BIGINT  REFERENCES users(id) ON DELETE SET NULL,
    created_at    BIGINT  NOT NULL
);
CREATE INDEX team_deploy_keys_key ON team_deploy_keys(secret_key_id);
