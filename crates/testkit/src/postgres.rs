//! Databases of the test stack's PostgreSQL (`DATABASE_URL`, else the machine's server).

/// The server's URL (any database on it).
pub fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh, empty database named `<prefix>_<unique>`; returns its URL.
pub async fn database(prefix: &str) -> String {
    let base = server_url();
    let name = crate::unique(prefix).replace('-', "_").to_lowercase();
    let pool = sqlx::PgPool::connect(&base)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .expect("create database");
    pool.close().await;
    let (server, _) = base.rsplit_once('/').expect("a database URL");
    format!("{server}/{name}")
}
