-- Adding a person who already has an account to a team no longer makes them a member: it
-- invites them, and the membership exists only once they accept (issue 11, finding 5).
CREATE TABLE membership_invitations (
    id         INTEGER PRIMARY KEY,
    team_id    INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role       TEXT    NOT NULL CHECK (role IN ('owner', 'deployer', 'viewer')),
    invited_by INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    UNIQUE (team_id, user_id)
);
CREATE INDEX membership_invitations_user ON membership_invitations(user_id);

-- Failed sign-ins are counted per (account, client address).
CREATE INDEX sign_in_attempts_email_ip ON sign_in_attempts(email, ip, attempted_at);
