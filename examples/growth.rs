//! What grows with the log: fold the simulator's events into every
//! projection and print, every `step` events, each projection's snapshot
//! size, and the size of the store's stream table.
//!
//! `cargo run --release --example growth -- [events] [step]`
//! (defaults: 10,000,000 and 1,000,000).

use retrace::domain::simulator::{Settings, Simulator};
use retrace::projection::snapshot::snapshots_of;
use retrace::projection::ProjectionSet;
use retrace::store::stream_table::StreamTable;

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>());
    let total = args.next().and_then(Result::ok).unwrap_or(10_000_000);
    let step = args.next().and_then(Result::ok).unwrap_or(1_000_000);
    let mut sim = Simulator::new(Settings::default());
    let mut set = ProjectionSet::default();
    let mut table = StreamTable::new();
    let mut seq = 0u64;
    let mut versions = std::collections::HashMap::<String, u64>::new();
    let mut header = true;
    while seq < total {
        let batch = sim.next_events(10_000);
        let mut envelopes = Vec::with_capacity(batch.len());
        for (stream, event) in batch {
            seq += 1;
            let version = versions.entry(stream.clone()).or_default();
            *version += 1;
            envelopes.push(event.into_envelope(seq, &stream, *version, 0));
        }
        // One segment per batch, as the store writes them.
        table.apply_segment(seq, &envelopes);
        for e in envelopes {
            let recorded = retrace::domain::decode(e).expect("the simulator's events decode");
            set.apply(&recorded);
        }
        if seq % step < 10_000 {
            let snaps = snapshots_of(&set);
            if header {
                let names: Vec<&str> = snaps.iter().map(|s| s.name.as_str()).collect();
                println!("events\t{}\tstreams\tstream table", names.join("\t"));
                header = false;
            }
            let sizes: Vec<String> = snaps
                .iter()
                .map(|s| format!("{:.2} MB", s.bytes.len() as f64 / 1e6))
                .collect();
            let table_bytes = table.clone().checkpoint().len();
            println!(
                "{seq}\t{}\t{}\t{:.1} MB\t(stats: {} days, {} changes)",
                sizes.join("\t"),
                table.len(),
                table_bytes as f64 / 1e6,
                set.stats.state.per_day.len(),
                set.stats.state.changes.len()
            );
        }
    }
}
