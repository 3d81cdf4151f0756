-- Configuration values are secret unless marked plain: a plain value may be shown to the
-- team and may name a base image; a secret one is write-only and redacted from every log.
-- Values stored before this migration were entered without that choice, so they stay secret.
ALTER TABLE app_config ADD COLUMN plain INTEGER NOT NULL DEFAULT 0;

-- Whether viewers may read runtime and operation logs (which can hold what an app prints).
-- Off until an owner allows it.
ALTER TABLE teams ADD COLUMN viewers_read_logs INTEGER NOT NULL DEFAULT 0;
