-- Dockerfile deploys: an app's git source. The read password (or token) is sealed by the
-- vault crate with the app's id as associated data, like every other secret.
ALTER TABLE apps ADD COLUMN git_url TEXT;
ALTER TABLE apps ADD COLUMN git_username TEXT;
ALTER TABLE apps ADD COLUMN git_secret_sealed TEXT;
ALTER TABLE apps ADD COLUMN git_secret_key_id TEXT;
ALTER TABLE apps ADD COLUMN dockerfile_path TEXT;
ALTER TABLE apps ADD COLUMN context_path TEXT;
CREATE INDEX apps_git_key ON apps(git_secret_key_id) WHERE git_secret_key_id IS NOT NULL;
