//! Write a CSV log of N simulated activity rows (case, activity, timestamp,
//! resource), as a user's export would look — the import benchmark's input.
//!
//! `cargo run --release --example simulated_csv -- 1000000 target/bench/sim-1000000.csv`

use retrace::domain::simulator::{Settings, Simulator};
use retrace::domain::{decode, Fact};
use std::io::Write;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: simulated_csv ROWS PATH");
    let path = args.next().expect("usage: simulated_csv ROWS PATH");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
    writeln!(out, "case,activity,timestamp,resource")?;
    let mut sim = Simulator::new(Settings::default());
    let (mut rows, mut seq) = (0, 0);
    while rows < n {
        for (stream, e) in sim.next_events(10_000) {
            seq += 1;
            let at = e.occurred_at;
            if let Ok(r) = decode(e.into_envelope(seq, &stream, 1, 0)) {
                if let Fact::ActivityRecorded(a) = r.fact {
                    if rows < n {
                        rows += 1;
                        writeln!(
                            out,
                            "{},{},{},{}",
                            a.case,
                            a.activity,
                            retrace::io::cloudevents::rfc3339(at),
                            a.resource.as_deref().unwrap_or("")
                        )?;
                    }
                }
            }
        }
    }
    out.flush()
}
