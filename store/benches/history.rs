//! History at a million operations: fills a SQLite file and a PostgreSQL database (the one
//! `BERTH_TEST_DATABASE_URL` names, or a throwaway cluster) with 1,000,000 operations of one
//! team, 50 apps and 5 people, then times the first page and a deep keyset page of
//! `operations_page` with each filter, and prints the plan each one gets.
//!
//! `cargo bench -p store --bench history` (`BERTH_BENCH_OPERATIONS` changes the count).

use domain::{OperationKind, OperationStatus};
use sqlx::{Connection, PgConnection, SqliteConnection};
use std::time::{Duration, Instant};
use store::{OperationFilter, Store};
use testdb::TestDatabase;

const APPS: i64 = 50;
const USERS: i64 = 5;
const PAGE: i64 = 50;
const RUNS: usize = 15;

#[tokio::main]
async fn main() {
    let operations: i64 = std::env::var("BERTH_BENCH_OPERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    for db in [TestDatabase::sqlite().await, TestDatabase::postgres().await] {
        bench(&db, operations).await;
    }
}

/// What the seeded rows look like, so that filters pick realistic shares of them.
struct Seeded {
    team_id: i64,
    /// An app created after the load, with no operations: its empty history must not make
    /// a planner read the whole table looking for one.
    fresh_app: i64,
    first_app: i64,
    first_user: i64,
    first_operation: i64,
}

async fn bench(db: &TestDatabase, operations: i64) {
    println!("\n=== {} ===", db.backend_name());
    let store = Store::connect(db.url()).await.expect("connect");
    store.migrate().await.expect("migrate");
    let started = Instant::now();
    let seeded = seed(db, operations).await;
    println!(
        "seeded {operations} operations in {:.1?}",
        started.elapsed()
    );

    let deep = seeded.first_operation + operations / 20;
    let app = seeded.first_app + 7;
    let user = seeded.first_user + 2;
    let filters: Vec<(&str, OperationFilter)> = vec![
        ("team (no filter)", filter(&seeded, None, None, None, None)),
        ("app", filter(&seeded, Some(app), None, None, None)),
        (
            "app with no operations",
            filter(&seeded, Some(seeded.fresh_app), None, None, None),
        ),
        (
            "kind=restart",
            filter(&seeded, None, Some(OperationKind::Restart), None, None),
        ),
        (
            "status=failed",
            filter(&seeded, None, None, Some(OperationStatus::Failed), None),
        ),
        (
            "status=cancelled",
            filter(&seeded, None, None, Some(OperationStatus::Cancelled), None),
        ),
        ("user", filter(&seeded, None, None, None, Some(user))),
        (
            "app+kind=restart",
            filter(&seeded, Some(app), Some(OperationKind::Restart), None, None),
        ),
        (
            "app+status=failed",
            filter(
                &seeded,
                Some(app),
                None,
                Some(OperationStatus::Failed),
                None,
            ),
        ),
        (
            "app+user",
            filter(&seeded, Some(app), None, None, Some(user)),
        ),
        (
            "kind=restart+status=cancelled",
            filter(
                &seeded,
                None,
                Some(OperationKind::Restart),
                Some(OperationStatus::Cancelled),
                None,
            ),
        ),
        (
            "app+kind+status+user",
            filter(
                &seeded,
                Some(app),
                Some(OperationKind::Deploy),
                Some(OperationStatus::Failed),
                Some(user),
            ),
        ),
    ];

    println!(
        "\n{:<32} {:>12} {:>6} {:>12} {:>6}   (median of {RUNS}, page of {PAGE}; deep: before id {deep})",
        "filter", "first page", "rows", "deep page", "rows"
    );
    // The slowest first and deep page over every filter, for the summary line.
    let (mut worst_first, mut worst_deep) = (Duration::ZERO, Duration::ZERO);
    for (name, filter) in &filters {
        let (first, first_rows) = time(|| store.operations_page(filter, None, PAGE)).await;
        let (deep_time, deep_rows) = time(|| store.operations_page(filter, Some(deep), PAGE)).await;
        worst_first = worst_first.max(first);
        worst_deep = worst_deep.max(deep_time);
        println!(
            "{name:<32} {:>12} {first_rows:>6} {:>12} {deep_rows:>6}",
            ms(first),
            ms(deep_time)
        );
    }

    println!("\nplans (deep page; the first page reads the same index without `id < $n`):");
    for (name, filter) in &filters {
        println!("-- {name}");
        for line in store
            .explain_operations_page(filter, Some(deep), PAGE)
            .await
            .expect("explain")
        {
            println!("   {line}");
        }
    }

    let month_ago = store::now_ms() - 30 * 86_400_000;
    let team = filter(&seeded, None, None, None, None);
    let (days, rows) = time(|| store.operation_days(&team, month_ago)).await;
    println!(
        "\noperation_days(team, last 30 days): {} ({rows} rows)",
        ms(days)
    );
    // What the history page reads, in its one statement: the page, the chart, the members.
    let (view, rows) = time(|| async {
        let view = store.history_view(&team, None, PAGE, month_ago).await?;
        Ok(view.operations)
    })
    .await;
    println!(
        "history_view(team, last 30 days): {} ({rows} rows, with the chart and the members)",
        ms(view)
    );
    let (first, _) = time(|| store.operations_page(&team, None, PAGE)).await;
    // One line for scripts/bench.sh: the team's first page with no filter and the chart's
    // numbers (what the history page reads), and the slowest page over every filter.
    println!(
        "summary backend={} operations={operations} team_first_page_ms={:.3} chart_ms={:.3} worst_first_page_ms={:.3} worst_deep_page_ms={:.3}",
        db.backend_name(),
        first.as_secs_f64() * 1000.0,
        days.as_secs_f64() * 1000.0,
        worst_first.as_secs_f64() * 1000.0,
        worst_deep.as_secs_f64() * 1000.0,
    );
    let one_app = filter(&seeded, Some(app), None, None, None);
    let (days, rows) = time(|| store.operation_days(&one_app, month_ago)).await;
    println!(
        "operation_days(app, last 30 days):  {} ({rows} rows)",
        ms(days)
    );
    let (list, rows) = time(|| store.apps(seeded.team_id)).await;
    println!(
        "apps(team) with last operations:    {} ({rows} apps)",
        ms(list)
    );
    let (claim, _) = time(|| async {
        store
            .claim_next_operation("bench", 60_000)
            .await
            .map(|claimed| claimed.into_iter().collect::<Vec<_>>())
    })
    .await;
    println!("claim_next_operation (queue empty): {}", ms(claim));
    store.close().await;
}

fn filter(
    seeded: &Seeded,
    app_id: Option<i64>,
    kind: Option<OperationKind>,
    status: Option<OperationStatus>,
    requested_by: Option<i64>,
) -> OperationFilter {
    OperationFilter {
        team_id: seeded.team_id,
        app_id,
        kind,
        status,
        requested_by,
    }
}

/// The median time of [`RUNS`] calls (after one to warm the cache) and the rows returned.
async fn time<T, F, Fut>(mut call: F) -> (Duration, usize)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, store::StoreError>>,
{
    let rows = call().await.expect("query").len();
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        call().await.expect("query");
        times.push(started.elapsed());
    }
    times.sort();
    (times[RUNS / 2], rows)
}

fn ms(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1000.0)
}

/// One team, its people and apps, and `operations` operations spread over them: kinds
/// 80% deploy / 15% configure / 5% restart, statuses 91% succeeded / 8% failed /
/// 1% cancelled, one a minute, mixed by a multiplicative hash so that filters are
/// independent of each other.
async fn seed(db: &TestDatabase, operations: i64) -> Seeded {
    let people: Vec<String> = (0..USERS)
        .map(|i| format!("('user{i}@example.com', NULL, 0)"))
        .collect();
    let apps: Vec<String> = (0..APPS)
        .map(|i| format!("((SELECT id FROM teams), 'app{i:02}', 'image', 0, 0)"))
        .collect();
    let start = store::now_ms() - operations * 60_000;
    // A well-formed digest per operation (`sha256:` and 64 hex digits), or the rows would
    // not decode: each backend spells zero-padded hex its own way.
    let digest = match db.backend_name() {
        "sqlite" => "printf('sha256:%064x', g)",
        _ => "'sha256:' || lpad(to_hex(g), 64, '0')",
    };
    let columns = format!(
        "INSERT INTO operations (team_id, app_id, kind, status, image, digest, credential_source,
                                 requested_by, created_at, started_at, finished_at)
         SELECT (SELECT id FROM teams), (SELECT MIN(id) FROM apps) + g % {APPS},
                CASE WHEN h % 20 = 0 THEN 'restart' WHEN h % 20 < 4 THEN 'configure' ELSE 'deploy' END,
                CASE WHEN (h / 20) % 100 = 0 THEN 'cancelled' WHEN (h / 20) % 100 < 9 THEN 'failed'
                     ELSE 'succeeded' END,
                'ghcr.io/bench/app:' || (g % 1000), {digest}, 'none',
                (SELECT MIN(id) FROM users) + (h / 2000) % {USERS},
                {start} + g * 60000, {start} + g * 60000 + 1000,
                {start} + g * 60000 + 1000 + h % 90000"
    );
    let statements = [
        format!(
            "INSERT INTO users (email, password_hash, created_at) VALUES {}",
            people.join(", ")
        ),
        "INSERT INTO teams (handle, name, created_at, updated_at) VALUES ('bench', 'Bench', 0, 0)"
            .to_owned(),
        format!(
            "INSERT INTO apps (team_id, handle, method, created_at, updated_at) VALUES {}",
            apps.join(", ")
        ),
    ];
    let fresh = "INSERT INTO apps (team_id, handle, method, created_at, updated_at)
                 VALUES ((SELECT id FROM teams), 'fresh', 'image', 0, 0)";
    let ids = "SELECT (SELECT id FROM teams), (SELECT MIN(id) FROM apps),
                      (SELECT MIN(id) FROM users), (SELECT MIN(id) FROM operations),
                      (SELECT id FROM apps WHERE handle = 'fresh')";
    let row: (i64, i64, i64, i64, i64) = match db.backend_name() {
        "sqlite" => {
            let mut c = SqliteConnection::connect(db.url()).await.expect("connect");
            for sql in &statements {
                sqlx::query(sql).execute(&mut c).await.expect("seed");
            }
            let insert = format!(
                "WITH RECURSIVE series(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM series WHERE g < {operations})
                 {columns}
                 FROM (SELECT g, (g * 2654435761) % 1000003 AS h FROM series) s"
            );
            sqlx::query(&insert).execute(&mut c).await.expect("seed");
            sqlx::query(fresh).execute(&mut c).await.expect("seed");
            sqlx::query_as(ids).fetch_one(&mut c).await.expect("ids")
        }
        _ => {
            let mut c = PgConnection::connect(db.url()).await.expect("connect");
            for sql in &statements {
                sqlx::query(sql).execute(&mut c).await.expect("seed");
            }
            let insert = format!(
                "{columns}
                 FROM (SELECT g, (g * 2654435761) % 1000003 AS h
                       FROM generate_series(CAST(1 AS BIGINT), {operations}) AS series(g)) s"
            );
            sqlx::query(&insert).execute(&mut c).await.expect("seed");
            sqlx::query(fresh).execute(&mut c).await.expect("seed");
            // What autovacuum would do shortly after such a load.
            sqlx::query("VACUUM ANALYZE operations")
                .execute(&mut c)
                .await
                .expect("analyze");
            sqlx::query_as(ids).fetch_one(&mut c).await.expect("ids")
        }
    };
    Seeded {
        team_id: row.0,
        fresh_app: row.4,
        first_app: row.1,
        first_user: row.2,
        first_operation: row.3,
    }
}
