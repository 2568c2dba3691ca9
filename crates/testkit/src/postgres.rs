//! Databases of the test stack's PostgreSQL (`DATABASE_URL`, else the machine's server).

/// The server's URL (any database on it).
pub fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh, empty database named `<prefix>_<pid>_<unique>`; returns its URL. Databases of the
/// same prefix made by test processes that have ended are dropped first, so runs on one
/// server do not pile them up (a test's service still holds its database when the test ends).
pub async fn database(prefix: &str) -> String {
    let base = server_url();
    let name = crate::unique(prefix).replace('-', "_").to_lowercase();
    let pool = sqlx::PgPool::connect(&base)
        .await
        .expect("connect to PostgreSQL");
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
            .bind(format!("{prefix}_"))
            .fetch_all(&pool)
            .await
            .unwrap_or_default();
    for old in names.iter().filter(|n| left_behind(prefix, n)) {
        // Another test process may be dropping it too: a failure here is not this test's.
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {old} WITH (FORCE)"))
            .execute(&pool)
            .await;
    }
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .expect("create database");
    pool.close().await;
    let (server, _) = base.rsplit_once('/').expect("a database URL");
    format!("{server}/{name}")
}

/// Whether `name` is a database [`database`] made for a process that is no longer running.
fn left_behind(prefix: &str, name: &str) -> bool {
    let pid = name
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .and_then(|rest| rest.split('_').next())
        .and_then(|pid| pid.parse::<u32>().ok());
    pid.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_databases_of_ended_processes_are_left_behind() {
        let mine = format!("rp_{}_1796682057591228852_4", std::process::id());
        assert!(!left_behind("rp", &mine));
        // Beyond Linux's largest pid (2^22): no such process.
        assert!(left_behind("rp", "rp_4194305_1796682057591228852_4"));
        assert!(!left_behind("rp", "rp_bench_4194305"));
        assert!(!left_behind("rp", "rpx_4194305_1_1"));
        assert!(!left_behind("fleet", "rp_4194305_1_1"));
    }
}
