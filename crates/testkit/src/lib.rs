//! Tests run against the real services that `make test` starts (see
//! scripts/stack.sh). Each test gets its own Postgres database, so tests run
//! in parallel without seeing each other's rows.

pub mod registry;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with `make test`, which starts the services and sets it")
    })
}

/// A fresh, empty database of its own; migrations are the caller's business
/// (the code under test applies them).
pub struct TestDatabase {
    pub url: String,
    pub name: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let admin_url = required("SLUICE_TEST_DATABASE_URL");
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("connecting to the test Postgres at {admin_url}: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("creating a test database");
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(base, _)| base);
        TestDatabase {
            url: format!("{base}/{name}"),
            name,
        }
    }

    pub async fn pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(8)
            .connect(&self.url)
            .await
            .expect("connecting to the test database")
    }
}

/// The HTTP interface of the test ClickHouse server.
pub fn clickhouse_url() -> String {
    required("SLUICE_TEST_CLICKHOUSE_URL")
}
