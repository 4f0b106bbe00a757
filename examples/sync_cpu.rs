//! The shared log's sync natively: how fast the driver (`share::sync`)
//! pushes an import and joins the log by the stream when neither a browser
//! nor IndexedDB is in the way — a real nats-server on loopback, the logs
//! in memory. The wall time and this process's CPU time of each, so that
//! the browser's figures (`BENCH_ONLY=shared`) can be read against the
//! driver's own cost.
//!
//! `cargo run --release --example sync_cpu` (`CASES=n`, 20,000 by default:
//! 140,000 events).

#[path = "../tests/support/driver.rs"]
mod driver;
#[path = "../tests/support/nats.rs"]
mod nats;

use driver::{events, run_until, Browser};
use futures::executor::LocalPool;
use retrace::store::ExpectedVersion;
use std::time::Instant;

/// This process's CPU time so far (user + system), seconds.
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command's closing parenthesis: utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

fn main() {
    let cases: u64 = std::env::var("CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(20_000);
    let n = cases * 7;
    let server = nats::Server::start(true);
    let mut pool = LocalPool::new();
    let (a, b) = (Browser::new(), Browser::new());
    for case in 0..cases {
        let c = format!("case-{case}");
        a.write(
            &c,
            ExpectedVersion::NoStream,
            events(case * 7 + 1..case * 7 + 8, &c),
        );
    }
    let (t, cpu) = (Instant::now(), cpu_s());
    a.connect(&pool, server.port, "bench", "a");
    run_until(&mut pool, 600, "the push", || {
        a.engine.head.get() == n && a.waiting() == 0
    });
    let (wall, used) = (t.elapsed().as_secs_f64(), cpu_s() - cpu);
    println!(
        "push {n} events: {:.2} s, {:.0} ev/s; this process's CPU {used:.2} s ({:.1} µs/event)",
        wall,
        n as f64 / wall,
        used * 1e6 / n as f64
    );
    let (t, cpu) = (Instant::now(), cpu_s());
    b.connect(&pool, server.port, "bench", "b");
    run_until(&mut pool, 600, "the join", || b.engine.head.get() == n);
    let (wall, used) = (t.elapsed().as_secs_f64(), cpu_s() - cpu);
    println!(
        "join {n} events by the stream: {:.2} s, {:.0} ev/s; this process's CPU {used:.2} s ({:.1} µs/event)",
        wall,
        n as f64 / wall,
        used * 1e6 / n as f64
    );
}
