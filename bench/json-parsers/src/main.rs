//! `make bench-json`: parses the same ~1.6 KB JSON messages into a DOM with
//! serde_json, simd-json and sonic-rs, in one run, and reports CPU seconds
//! per GB and the ratio to serde_json. A DOM is what the decoder needs
//! (fields are looked up by path per column). Not a test: figures go to
//! docs/benchmarks.md.

use std::hint::black_box;
use std::time::Instant;

fn messages(count: usize) -> Vec<Vec<u8>> {
    // Deterministic content with the benchmark's shape and size.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..count)
        .map(|i| {
            let payload: String = (0..1380).map(|_| (b'a' + (next() % 26) as u8) as char).collect();
            format!(
                r#"{{"id":{i},"ts":"2023-11-14 22:13:20","user":"user-{}","country":"DE","amount":{}.{:02},"qty":{},"tags":["t{}","t{}"],"status":"paid","payload":"{payload}"}}"#,
                i % 100_000,
                next() % 1000,
                next() % 100,
                i % 1000,
                i % 7,
                i % 11
            )
            .into_bytes()
        })
        .collect()
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn measure(
    name: &str,
    messages: &[Vec<u8>],
    rounds: usize,
    parse: impl Fn(&mut Vec<u8>) -> usize,
) -> f64 {
    let bytes: usize = messages.iter().map(Vec::len).sum::<usize>() * rounds;
    let mut scratch: Vec<Vec<u8>> = messages.to_vec();
    let cpu = cpu_seconds();
    let wall = Instant::now();
    let mut fields = 0;
    for _ in 0..rounds {
        for (m, original) in scratch.iter_mut().zip(messages) {
            // simd-json parses in place; every parser gets a fresh copy.
            m.clear();
            m.extend_from_slice(original);
            fields += parse(m);
        }
    }
    let cpu = cpu_seconds() - cpu;
    let per_gb = cpu / (bytes as f64 / 1e9);
    println!(
        "{{\"parser\": \"{name}\", \"mb\": {:.0}, \"mb_per_s\": {:.1}, \"cpu_s_per_gb\": {:.2}, \"fields\": {}}}",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / wall.elapsed().as_secs_f64(),
        per_gb,
        black_box(fields)
    );
    per_gb
}

fn main() {
    let count: usize = std::env::var("SLUICE_BENCH_JSON_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rounds = 3;
    let messages = messages(count);
    let serde = measure("serde_json::Value", &messages, rounds, |m| {
        serde_json::from_slice::<serde_json::Value>(m)
            .map(|v| v.as_object().map_or(0, |o| o.len()))
            .unwrap_or(0)
    });
    let simd = measure("simd_json::OwnedValue", &messages, rounds, |m| {
        use simd_json::prelude::*;
        simd_json::to_owned_value(m)
            .map(|v| v.as_object().map_or(0, |o| o.len()))
            .unwrap_or(0)
    });
    let sonic = measure("sonic_rs::Value", &messages, rounds, |m| {
        use sonic_rs::JsonContainerTrait;
        sonic_rs::from_slice::<sonic_rs::Value>(m)
            .map(|v| v.as_object().map_or(0, |o| o.len()))
            .unwrap_or(0)
    });
    println!(
        "{{\"simd_json_vs_serde\": {:.2}, \"sonic_rs_vs_serde\": {:.2}}}",
        simd / serde,
        sonic / serde
    );
}
