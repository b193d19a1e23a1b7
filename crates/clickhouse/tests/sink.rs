//! The sink against the real ClickHouse of the test stack.

use bytes::Bytes;
use sluice_clickhouse::ddl::{create_table, insert_statement, ManagedTable};
use sluice_clickhouse::{encode, ChType, Endpoint, Sink, Value};

fn endpoint(database: &str) -> Endpoint {
    Endpoint {
        url: sluice_testkit::clickhouse_url(),
        user: "default".into(),
        password: String::new(),
        database: database.into(),
        ca_certificate: None,
        egress: Default::default(),
    }
}

async fn fresh_database() -> (Sink, String) {
    let database = format!("sink_{}", uuid::Uuid::new_v4().simple());
    Sink::new(&endpoint("default"))
        .unwrap()
        .execute(&format!("CREATE DATABASE {database}"))
        .await
        .unwrap();
    (Sink::new(&endpoint(&database)).unwrap(), database)
}

#[tokio::test]
async fn large_multi_chunk_inserts_land_whole() {
    let (sink, database) = fresh_database().await;
    let columns = vec![
        ("id".to_owned(), ChType::UInt64),
        ("s".to_owned(), ChType::String),
    ];
    sink.execute(&create_table(&ManagedTable {
        database: &database,
        table: "t",
        columns: &columns,
        engine: "MergeTree",
        sorting_key: &["id".to_owned()],
        partition_by: None,
        primary_key: None,
        deduplication_window: None,
    }))
    .await
    .unwrap();
    let mut chunks = Vec::new();
    let mut id = 0u64;
    for rows in [3_822usize, 4_242, 40_000, 1] {
        let mut buf = Vec::new();
        for _ in 0..rows {
            encode(&ChType::UInt64, &Value::int(i128::from(id)), &mut buf).unwrap();
            encode(
                &ChType::String,
                &Value::string(format!("{id:0>150}")),
                &mut buf,
            )
            .unwrap();
            id += 1;
        }
        chunks.push(Bytes::from(buf));
    }
    sink.insert_rowbinary(
        &insert_statement(&database, "t", &["id", "s"]),
        chunks,
        &[],
        None,
    )
    .await
    .unwrap();
    let got = sink
        .fetch_text(
            &format!("SELECT count(), uniqExact(id), max(id) FROM {database}.t"),
            "TabSeparated",
        )
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got).trim(),
        format!("{id}\t{id}\t{}", id - 1)
    );
}
