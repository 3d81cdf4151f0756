-- ECR credentials (issue 13). A credential of kind 'ecr' keeps its AWS access key id in
-- `username` and its secret access key sealed in `secret_sealed`, like any credential's
-- secret; these columns add the region and the role Berth assumes first (with the external
-- id its trust policy may require). Berth mints a fresh ECR token for each use: the token
-- itself is never stored, only when the last one was minted and when it expires, and the
-- last error AWS answered (verbatim, for the credential's page).
ALTER TABLE registry_credentials ADD COLUMN aws_region TEXT;
ALTER TABLE registry_credentials ADD COLUMN aws_role_arn TEXT;
ALTER TABLE registry_credentials ADD COLUMN aws_external_id TEXT;
ALTER TABLE registry_credentials ADD COLUMN ecr_token_minted_at INTEGER;
ALTER TABLE registry_credentials ADD COLUMN ecr_token_expires_at INTEGER;
ALTER TABLE registry_credentials ADD COLUMN aws_error TEXT;
ALTER TABLE registry_credentials ADD COLUMN aws_error_at INTEGER;
