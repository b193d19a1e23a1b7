//! TEST SCAFFOLDING: the minimal schema registry of
//! `sluice_testkit::registry` as a process, for the benchmarks and for
//! trying registry formats on the local stack. Not part of Sluice.
//!
//! Usage: sluice-test-registry <port> (listens on 127.0.0.1 only)

#[tokio::main]
async fn main() {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        Some(Ok(port)) => port,
        _ => {
            eprintln!("usage: sluice-test-registry <port>");
            std::process::exit(2);
        }
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| {
            eprintln!("binding 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        });
    let registry = sluice_testkit::registry::TestRegistry::serve(listener, None);
    println!("schema registry (test scaffolding) at {}", registry.url);
    tokio::signal::ctrl_c().await.ok();
}
