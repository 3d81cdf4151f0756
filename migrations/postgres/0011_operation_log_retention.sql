-- Operation logs are kept for BERTH_OPERATION_LOG_DAYS after the operation ends (issue 14,
-- bounded disk). The operation itself stays in the history; its log lines are deleted and
-- this records when, so that pages can say why the log is empty.
ALTER TABLE operations ADD COLUMN log_pruned_at BIGINT;
-- Finds the ended operations whose logs are due, oldest first, without scanning the rest.
CREATE INDEX operations_log_due ON operations(finished_at) WHERE log_pruned_at IS NULL AND finished_at IS NOT NULL;
