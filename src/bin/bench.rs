//! Benchmark entry points for `make bench`: the same work the JavaScript
//! baselines in bench/baselines.js do, on Retrace's IndexedDB store. Built
//! with the speed profile and driven by bench/run.mjs in headless Chromium.

#[cfg(target_arch = "wasm32")]
mod wasm {
    use futures::future::join_all;
    use retrace::log::NewEvent;
    use retrace::store::idb::IdbStore;
    use retrace::store::{EventStore, ExpectedVersion, StreamAppend};
    use wasm_bindgen::prelude::*;

    /// Events per case stream in every benchmark workload.
    const PER_CASE: u64 = 5;

    fn now() -> f64 {
        web_sys::window()
            .and_then(|w| w.performance())
            .map(|p| p.now())
            .unwrap_or(0.0)
    }

    fn err(e: impl std::fmt::Display) -> JsValue {
        JsValue::from_str(&e.to_string())
    }

    /// The n-th event of the workload: case `n / 5`, the same shape and
    /// payload as the JavaScript baselines write.
    pub fn workload_event(n: u64) -> (String, NewEvent) {
        let case = n / PER_CASE;
        let activity = ["Register", "Triage", "Work", "Review", "Close"][(n % PER_CASE) as usize];
        let data = serde_json::json!({
            "case": format!("{case}"),
            "activity": activity,
            "resource": format!("r{}", n % 7),
            "hours": ((n % 13) as f64) * 0.25,
            "attributes": {},
        });
        let event = NewEvent::new(
            format!("ev-{n}"),
            "ActivityRecorded",
            3,
            1_700_000_000_000 + n as i64 * 60_000,
            &data,
        )
        .correlated(format!("{case}"));
        (format!("case-{case}"), event)
    }

    fn batches(total: u64, batch: u64) -> Vec<Vec<StreamAppend>> {
        (0..total)
            .step_by(batch as usize)
            .map(|start| {
                let mut parts: Vec<StreamAppend> = Vec::new();
                for n in start..(start + batch).min(total) {
                    let (stream, event) = workload_event(n);
                    match parts.last_mut() {
                        Some(p) if p.stream == stream => p.events.push(event),
                        _ => {
                            parts.push(StreamAppend::new(stream, ExpectedVersion::Any, vec![event]))
                        }
                    }
                }
                parts
            })
            .collect()
    }

    /// Append `total` events in awaited batches of `batch`; returns ms.
    #[wasm_bindgen]
    pub async fn retrace_append(db: String, total: u32, batch: u32) -> Result<f64, JsValue> {
        let store = IdbStore::open(&db).await.map_err(err)?;
        let work = batches(total as u64, batch as u64);
        let t0 = now();
        for b in work {
            store.append_batch(b).await.map_err(err)?;
        }
        let ms = now() - t0;
        store.close();
        Ok(ms)
    }

    /// A live stream: one-event appends issued as events arrive, without
    /// waiting for the previous one (the store groups them into commits).
    /// The producer yields to the event loop after each event. Returns ms
    /// until every append has committed.
    #[wasm_bindgen]
    pub async fn retrace_append_live(db: String, total: u32) -> Result<f64, JsValue> {
        let store = IdbStore::open(&db).await.map_err(err)?;
        let work = batches(total as u64, 1);
        let t0 = now();
        let mut pending = Vec::with_capacity(work.len());
        for b in work {
            pending.push(store.append_batch(b));
            if pending.len() % 8 == 0 {
                // Let earlier appends and the event loop run, as a stream would.
                retrace::ui::browser::yield_now().await;
            }
        }
        for r in join_all(pending).await {
            r.map_err(err)?;
        }
        let ms = now() - t0;
        store.close();
        Ok(ms)
    }

    /// Read the whole log in order, decoded, `batch` events at a time.
    /// Returns [ms, events read].
    #[wasm_bindgen]
    pub async fn retrace_read(db: String, batch: u32) -> Result<Vec<f64>, JsValue> {
        let store = IdbStore::open(&db).await.map_err(err)?;
        let t0 = now();
        let (mut from, mut count, mut checksum) = (1u64, 0u64, 0u64);
        loop {
            let page = store.read_all(from, batch as usize).await.map_err(err)?;
            let Some(last) = page.last() else { break };
            from = last.seq + 1;
            count += page.len() as u64;
            checksum = checksum.wrapping_add(
                page.iter()
                    .map(|e| e.version + e.data.len() as u64)
                    .sum::<u64>(),
            );
        }
        let ms = now() - t0;
        store.close();
        std::hint::black_box(checksum);
        Ok(vec![ms, count as f64])
    }

    /// Fill database `db` with `n` simulated events (batches of 10,000) and,
    /// when `snapshots`, save projection snapshots at the head — the state a
    /// user's browser is in after a long run. Returns ms taken:
    /// [all, appending, replaying into the projections, saving snapshots];
    /// the simulator's own time is the rest. Then the module's memory once
    /// the events were appended (before the replay), in bytes.
    #[wasm_bindgen]
    pub async fn prefill(db: String, n: u32, snapshots: bool) -> Result<Vec<f64>, JsValue> {
        use retrace::domain::simulator::{Settings, Simulator};
        let t0 = now();
        let store = IdbStore::open(&db).await.map_err(err)?;
        let mut sim = Simulator::new(Settings::default());
        let mut left = n as usize;
        let mut appending = 0.0;
        while left > 0 {
            let events = sim.next_events(left.min(10_000));
            let take = events.len().min(left);
            left -= take;
            let batch = events
                .into_iter()
                .take(take)
                .map(|(s, e)| StreamAppend::new(s, ExpectedVersion::Any, vec![e]))
                .collect();
            let t = now();
            store.append_batch(batch).await.map_err(err)?;
            appending += now() - t;
        }
        let appended = memory_bytes();
        let (mut replaying, mut saving) = (0.0, 0.0);
        if snapshots {
            let t = now();
            let mut set = retrace::projection::ProjectionSet::default();
            retrace::projection::replay(&mut set, &store, u64::MAX, 4096, |_| {})
                .await
                .map_err(err)?;
            replaying = now() - t;
            let t = now();
            retrace::projection::snapshot::save(&store, &set)
                .await
                .map_err(err)?;
            saving = now() - t;
        }
        store.close();
        Ok(vec![now() - t0, appending, replaying, saving, appended])
    }

    /// The bench page's wasm linear memory in bytes (it only grows, so this
    /// is its peak so far).
    #[wasm_bindgen]
    pub fn memory_bytes() -> f64 {
        use wasm_bindgen::JsCast;
        wasm_bindgen::memory()
            .unchecked_into::<js_sys::WebAssembly::Memory>()
            .buffer()
            .unchecked_into::<js_sys::ArrayBuffer>()
            .byte_length() as f64
    }

    /// Fold throughput of the whole projection set from memory: `n`
    /// simulated events, decoded first. Returns [fold ms, decode ms].
    #[wasm_bindgen]
    pub fn fold_throughput(n: u32) -> Vec<f64> {
        use retrace::domain::simulator::{Settings, Simulator};
        let mut sim = Simulator::new(Settings::default());
        let envelopes: Vec<_> = sim
            .next_events(n as usize)
            .into_iter()
            .take(n as usize)
            .enumerate()
            .map(|(i, (s, e))| e.into_envelope(i as u64 + 1, &s, 1, 0))
            .collect();
        let t0 = now();
        let decoded: Vec<_> = envelopes
            .into_iter()
            .map(|e| retrace::domain::decode(e).unwrap())
            .collect();
        let t1 = now();
        let mut set = retrace::projection::ProjectionSet::default();
        for e in &decoded {
            set.apply(e);
        }
        let t2 = now();
        std::hint::black_box(set.seq());
        vec![t2 - t1, t1 - t0]
    }

    /// The training benchmark's data: backtest rows (the first `limit`
    /// training rows), the spec, and the test rows.
    struct ForestRows {
        spec: retrace::ml::models::Spec,
        schema: retrace::ml::features::FeatureSchema,
        rows: Vec<Vec<f64>>,
        hours: Vec<f64>,
        test_rows: Vec<Vec<f64>>,
        test_hours: Vec<f64>,
    }

    /// Closed cases of `csv`, in file order — or, when `csv` is empty, of a
    /// simulated log of 90,000 events (about 12,000 cases: enough for 25,000
    /// training rows and more).
    fn bench_cases(csv: &[u8]) -> Vec<retrace::projection::training_set::Finished> {
        use retrace::projection::Projection;
        if !csv.is_empty() {
            let log = retrace::io::csv::read_all(
                csv,
                retrace::io::csv::sniff(csv).unwrap().mapping,
                false,
            )
            .unwrap();
            return retrace::ml::backtest::cases_in_file_order(&log);
        }
        use retrace::domain::simulator::{Settings, Simulator};
        let mut sim = Simulator::new(Settings::default());
        let mut set = retrace::projection::training_set::TrainingSet::with_window(usize::MAX);
        for (i, (stream, e)) in sim.next_events(90_000).into_iter().enumerate() {
            let recorded = retrace::domain::decode(e.into_envelope(i as u64 + 1, &stream, 1, 0));
            set.apply(&recorded.unwrap());
        }
        set.closed.into_iter().collect()
    }

    /// `algorithm`: `forest` (mtry = √width, as scikit-learn is told) or
    /// `boosted` (absolute loss, the app's defaults).
    fn forest_rows(
        csv: &[u8],
        limit: usize,
        algorithm: &str,
        trees: usize,
        depth: u16,
    ) -> ForestRows {
        use retrace::ml::backtest::training_rows;
        use retrace::ml::features::FeatureSchema;
        use retrace::ml::models::{Algorithm, Spec};
        let cases = bench_cases(csv);
        let split = cases.len() * 2 / 3;
        let train: Vec<_> = cases[..split].iter().collect();
        let test: Vec<_> = cases[split..].iter().collect();
        let schema = FeatureSchema::build(train.iter().map(|f| &f.trace));
        let (mut rows, mut hours) = training_rows(&schema, &train);
        rows.truncate(limit);
        hours.truncate(limit);
        let (test_rows, test_hours) = training_rows(&schema, &test);
        let mtry = (schema.width() as f64).sqrt().floor() as usize;
        let spec = match algorithm {
            "boosted" => Spec {
                trees,
                max_depth: depth,
                ..Spec::new(Algorithm::Boosted)
            },
            _ => Spec {
                trees,
                max_depth: depth,
                features_per_split: mtry,
                ..Spec::new(Algorithm::RandomForest)
            },
        };
        ForestRows {
            spec,
            schema,
            rows,
            hours,
            test_rows,
            test_hours,
        }
    }

    /// The rows as JSON for the other implementations: features on the log
    /// target, exactly what Retrace trains on.
    #[wasm_bindgen]
    pub fn forest_rows_json(
        csv: Vec<u8>,
        limit: u32,
        algorithm: String,
        trees: u32,
        depth: u16,
    ) -> String {
        let ForestRows {
            spec,
            rows,
            hours,
            test_rows,
            test_hours,
            ..
        } = forest_rows(&csv, limit as usize, &algorithm, trees as usize, depth);
        serde_json::json!({
            "trees": spec.trees, "max_depth": spec.max_depth, "min_leaf": spec.min_leaf, "mtry": spec.features_per_split, "seed": spec.seed,
            "rows": rows.len(),
            "train_x": rows, "train_y": hours.iter().map(|h| h.max(0.0).ln_1p()).collect::<Vec<_>>(),
            "test_x": test_rows, "test_hours": test_hours,
        })
        .to_string()
    }

    /// A training request for the worker, postcard-encoded.
    #[wasm_bindgen]
    pub fn forest_request(
        csv: Vec<u8>,
        limit: u32,
        algorithm: String,
        trees: u32,
        depth: u16,
    ) -> Vec<u8> {
        let ForestRows {
            spec,
            schema,
            rows,
            hours,
            ..
        } = forest_rows(&csv, limit as usize, &algorithm, trees as usize, depth);
        retrace::ml::protocol::encode(&retrace::ml::protocol::ToWorker::Train {
            id: 1,
            spec,
            schema,
            rows,
            hours,
        })
    }

    /// Whether a worker message is the training reply.
    #[wasm_bindgen]
    pub fn is_trained_reply(bytes: Vec<u8>) -> bool {
        matches!(
            retrace::ml::protocol::decode::<retrace::ml::protocol::FromWorker>(&bytes),
            Ok(retrace::ml::protocol::FromWorker::Trained { .. }
                | retrace::ml::protocol::FromWorker::Failed { .. })
        )
    }

    /// Score the worker's model on the test rows: [worker training seconds,
    /// MAE days, prediction ms per case, model bytes].
    #[wasm_bindgen]
    pub fn forest_score(
        reply: Vec<u8>,
        csv: Vec<u8>,
        limit: u32,
        algorithm: String,
        trees: u32,
        depth: u16,
    ) -> Result<Vec<f64>, JsValue> {
        use retrace::ml::protocol::{decode, FromWorker};
        let ForestRows {
            test_rows,
            test_hours,
            ..
        } = forest_rows(&csv, limit as usize, &algorithm, trees as usize, depth);
        let (bytes, seconds) = match decode::<FromWorker>(&reply).map_err(err)? {
            FromWorker::Trained { model, seconds, .. } => (model, seconds),
            FromWorker::Failed { message, .. } => return Err(err(message)),
            _ => return Err(err("unexpected reply")),
        };
        let model = retrace::ml::models::Model::from_bytes(&bytes).map_err(err)?;
        let t0 = now();
        let predicted = model.predict(&test_rows).map_err(err)?;
        let per_case = (now() - t0) / test_rows.len() as f64;
        let mae = predicted
            .iter()
            .zip(&test_hours)
            .map(|(p, t)| (p - t).abs())
            .sum::<f64>()
            / test_hours.len() as f64
            / 24.0;
        Ok(vec![seconds, mae, per_case, bytes.len() as f64])
    }

    /// The workload's events as JSON envelopes, for the baselines: the very
    /// same events, so every store writes the same data.
    #[wasm_bindgen]
    pub fn workload_json(from: u32, count: u32) -> String {
        let events: Vec<retrace::log::Envelope> = (from as u64..(from + count) as u64)
            .map(|n| {
                let (stream, e) = workload_event(n);
                e.into_envelope(n + 1, &stream, n % PER_CASE + 1, 1_800_000_000_000)
            })
            .collect();
        serde_json::to_string(&events).unwrap()
    }
}

fn main() {}
