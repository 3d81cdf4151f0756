//! Rows as pages and the JSON API show them: the one place that turns what the store holds
//! into [`views`] types. Nothing here ever copies a secret.

use store::{AuditEvent, LogLine, Operation, OperationSummary, RegistryCredential, TeamAccess};
use views::{
    AuditRow, CheckRow, ConfigChangeRow, CredentialRow, LastOperation, LogLineRow, OperationRow,
    OperationSummaryRow, TeamSummary,
};

pub fn team(access: &TeamAccess) -> TeamSummary {
    TeamSummary {
        handle: access.handle.clone(),
        name: access.name.clone(),
        role: access.role,
        viewers_read_logs: access.viewers_read_logs,
    }
}

pub fn operation(team: &str, o: Operation) -> OperationRow {
    let config_changes = o
        .config_changes()
        .into_iter()
        .map(|(key, set)| ConfigChangeRow { key, set })
        .collect();
    OperationRow {
        id: o.id,
        team: team.to_owned(),
        app: o.app_handle.to_string(),
        kind: o.kind,
        status: o.status,
        image: o.image.map(|i| i.to_string()),
        digest: o.digest.map(String::from),
        git_ref: o.git_ref.map(String::from),
        commit: o.commit_sha.map(String::from),
        credential_source: o.credential_source,
        credential_name: o.credential_name,
        credential_version: o.credential_version,
        config_changes,
        requested_by: o.requested_by_email,
        created_at: o.created_at,
        started_at: o.started_at,
        finished_at: o.finished_at,
        error: o.error,
        step: o.step,
        log_pruned_at: o.log_pruned_at,
        aptible_operation: o.remote_operation_id.map(|id| views::AptibleOperationRef {
            id,
            url: platform::aptible::dashboard_operation_url(id),
        }),
    }
}

pub fn operation_summary(o: OperationSummary) -> OperationSummaryRow {
    OperationSummaryRow {
        id: o.id,
        app: o.app_handle,
        kind: o.kind,
        status: o.status,
        image: o.image,
        digest: o.digest,
        git_ref: o.git_ref,
        commit: o.commit_sha,
        requested_by: o.requested_by_email,
        created_at: o.created_at,
        started_at: o.started_at,
        finished_at: o.finished_at,
    }
}

pub fn last_operation(o: &OperationSummaryRow) -> LastOperation {
    LastOperation {
        id: o.id,
        kind: o.kind,
        status: o.status,
        at: o.created_at,
    }
}

pub fn credential(c: RegistryCredential) -> CredentialRow {
    let aws = (c.kind == domain::CredentialKind::Ecr).then(|| views::AwsRow {
        access_key_id: c.username.clone(),
        region: c.aws_region.clone().unwrap_or_default(),
        role_arn: c.aws_role_arn.clone(),
        external_id: c.aws_external_id.clone(),
        token_minted_at: c.ecr_token_minted_at,
        token_expires_at: c.ecr_token_expires_at,
        last_error: c.aws_error.clone(),
        last_error_at: c.aws_error_at,
    });
    CredentialRow {
        aws,
        last_verified: c.last_verified_at.map(|at| CheckRow {
            at,
            ok: c.last_verified_ok.unwrap_or(false),
            detail: c.last_verified_detail.clone().unwrap_or_default(),
        }),
        last_used: c.last_used_at.map(|at| CheckRow {
            at,
            ok: true,
            detail: c.last_used_detail.clone().unwrap_or_default(),
        }),
        name: c.name.to_string(),
        registry: c.registry.to_string(),
        kind: c.kind,
        username: c.username,
        note: c.note,
        secret_version: c.secret_version,
        created_at: c.created_at,
        updated_at: c.updated_at,
        expires_at: c.expires_at,
        used_by_apps: c.used_by_apps,
    }
}

pub fn audit_event(e: AuditEvent) -> AuditRow {
    AuditRow {
        id: e.id,
        at: e.at,
        actor: e.actor_email,
        action: e.action,
        subject: e.subject,
        ok: e.outcome == "ok",
        detail: e.detail,
    }
}

pub fn log_line(l: LogLine) -> LogLineRow {
    LogLineRow {
        id: l.id,
        at: l.at,
        line: l.line,
    }
}
