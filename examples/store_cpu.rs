//! What an append and a read cost the CPU, without the browser: the
//! simulator's events placed (positions and version checks), the versions a
//! group commit tracks, the segment encoded, the stream table updated, and
//! every segment decoded again — each step timed alone, per event.
//!
//! `cargo run --release --example store_cpu -- [events]` (default 1,000,000;
//! batches of 10,000, as `make bench` appends).

use retrace::domain::simulator::{Settings, Simulator};
use retrace::log::codec::{decode_segment, encode_segment};
use retrace::store::stream_table::StreamTable;
use retrace::store::{by_stream, place};
use std::time::Instant;

fn main() {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut sim = Simulator::new(Settings::default());
    let batches: Vec<_> = (0..total / 10_000)
        .map(|_| by_stream(sim.next_events(10_000)))
        .collect();
    let mut table = StreamTable::new();
    let mut spent = [0.0f64; 5];
    let mut time = |step: usize, start: Instant| spent[step] += start.elapsed().as_secs_f64();
    let (mut head, mut bytes) = (0u64, 0usize);
    let mut segments = Vec::new();
    for batch in batches {
        let t = Instant::now();
        let placed = place(batch, head, 0, |s| table.version(s)).expect("no conflicts");
        time(0, t);
        let t = Instant::now();
        let mut moved = rustc_hash::FxHashMap::default();
        moved.extend(placed.versions);
        time(1, t);
        let events = placed.events;
        head += events.len() as u64;
        let t = Instant::now();
        let segment = encode_segment(&events);
        time(2, t);
        let t = Instant::now();
        table.apply_segment(head, &events);
        time(3, t);
        bytes += segment.len();
        segments.push(segment);
    }
    for segment in &segments {
        let t = Instant::now();
        std::hint::black_box(decode_segment(segment).expect("decodes"));
        time(4, t);
    }
    let n = head as f64;
    let steps = ["place", "versions", "encode", "table", "decode"];
    for (name, s) in steps.iter().zip(spent) {
        println!(
            "{name:10} {:5.0} ns/event {:>12.0} events/s",
            s / n * 1e9,
            n / s
        );
    }
    println!(
        "{head} events, {} streams, segments {:.1} bytes/event",
        table.len(),
        bytes as f64 / n
    );
}
