//! Payloads of the domain events and their schema history.
//!
//! Every import maps onto these three types; the app's own events (models,
//! predictions, drift) are declared beside them as features arrive.
//!
//! Schema history (the upcasters below lift each step):
//! - `CaseOpened` v1 `{case, customer, category, priority}` →
//!   v2 `{case, attributes}` (free-form attributes, so imported logs fit).
//! - `ActivityRecorded` v1 `{case, activity, user, minutes}` →
//!   v2 renames `user` to `resource` →
//!   v3 `{case, activity, resource, hours, attributes}` (hours, not minutes).
//! - `CaseClosed` v1 `{case}` → v2 `{case, outcome}`.

use crate::log::upcast::Schemas;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// A name many events repeat (an activity, a resource): reference-counted
/// so projections share one copy instead of allocating per event.
pub type Name = std::rc::Rc<str>;

/// Free-form case or event attributes (customer, category, priority, …).
pub type Attributes = BTreeMap<String, Value>;

/// A case (work order, ticket) was opened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseOpened {
    /// Case id.
    pub case: String,
    /// What is known about the case when it opens.
    #[serde(default)]
    pub attributes: Attributes,
}

impl CaseOpened {
    /// Type name in the log.
    pub const TYPE: &'static str = "CaseOpened";
    /// Current payload schema.
    pub const SCHEMA: u32 = 2;
}

/// A step was done on a case, or work was logged against it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityRecorded {
    /// Case id.
    pub case: String,
    /// What was done. (Shared, not copied, by every projection that keeps it.)
    pub activity: Name,
    /// Who (or what) did it.
    #[serde(default)]
    pub resource: Option<Name>,
    /// Hours of work logged, when known.
    #[serde(default)]
    pub hours: Option<f64>,
    /// Further attributes of this event.
    #[serde(default)]
    pub attributes: Attributes,
}

impl ActivityRecorded {
    /// Type name in the log.
    pub const TYPE: &'static str = "ActivityRecorded";
    /// Current payload schema.
    pub const SCHEMA: u32 = 3;
}

/// A case was closed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseClosed {
    /// Case id.
    pub case: String,
    /// How it ended, when known.
    #[serde(default)]
    pub outcome: Option<String>,
}

impl CaseClosed {
    /// Type name in the log.
    pub const TYPE: &'static str = "CaseClosed";
    /// Current payload schema.
    pub const SCHEMA: u32 = 2;
}

/// The process itself changed (the simulator's injected concept drift, or a
/// change a user records): the moment shows in every chart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessChanged {
    /// What changed, in a word: `resource_left`, `work_doubled`, `rework_added`, `parts_wait`.
    pub kind: String,
    /// What changed, in words.
    pub description: String,
}

impl ProcessChanged {
    /// Type name in the log.
    pub const TYPE: &'static str = "ProcessChanged";
    /// Current payload schema.
    pub const SCHEMA: u32 = 1;
    /// The stream process-level events go to.
    pub const STREAM: &'static str = "process";
}

/// A message of a shared log that did not pass its gate (or a sequence the
/// server no longer holds), kept at its place so every copy of the log has
/// the same events at the same positions. Written by each browser's own
/// gate (`crate::share::gate`), never received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRefused {
    /// Its sequence on the server: its `seq` in every copy.
    pub seq: u64,
    /// The subject it was published to (empty for a gap).
    pub subject: String,
    /// Why, in words.
    pub reason: String,
    /// SHA-256 of its payload, hex (of nothing, for a gap).
    pub sha256: String,
    /// Its payload's size, bytes.
    pub size: usize,
}

impl MessageRefused {
    /// Type name in the log.
    pub const TYPE: &'static str = "MessageRefused";
    /// Payload schema.
    pub const SCHEMA: u32 = 1;
}

/// A model predicted a case's remaining time, before the outcome was known.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictionRecorded {
    /// The case.
    pub case: String,
    /// The model (registry id).
    pub model: String,
    /// Predicted remaining time, hours.
    pub predicted_h: f64,
    /// The median baseline's prediction for the same prefix, hours.
    pub baseline_h: f64,
    /// Activities in the prefix the prediction was made on.
    pub prefix_len: u32,
    /// Made by a challenger in shadow: scored, but not what the loop served.
    #[serde(default)]
    pub shadow: bool,
    /// The low end of the model's 80 % interval, hours (None: the model
    /// had no calibrated interval, or the event is older than intervals).
    #[serde(default)]
    pub low_h: Option<f64>,
    /// The high end of that interval, hours.
    #[serde(default)]
    pub high_h: Option<f64>,
}

impl PredictionRecorded {
    /// Type name in the log.
    pub const TYPE: &'static str = "PredictionRecorded";
    /// Current payload schema.
    pub const SCHEMA: u32 = 2;
}

/// The error of a model's predictions rose: the drift detector fired.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftDetected {
    /// The model whose errors drifted.
    pub model: String,
    /// The detector's statistic when it fired.
    pub statistic: f64,
    /// Its threshold.
    pub threshold: f64,
    /// Outcomes the model had been scored on.
    pub outcomes: u64,
    /// When the rise began, by the detector's estimate (domain time; the
    /// close of the outcome after which the errors started to climb).
    #[serde(default)]
    pub since: i64,
    /// The loop's term it was decided in, on a shared log: the position of
    /// the driver's [`LoopTaken`]. The fold counts it only while that term
    /// is the newest (see [`LoopTaken`]); None on a log of one's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
}

impl DriftDetected {
    /// Type name in the log.
    pub const TYPE: &'static str = "DriftDetected";
    /// Current payload schema.
    pub const SCHEMA: u32 = 1;
}

/// The stream the model lifecycle events go to.
pub const MODELS_STREAM: &str = "models";

/// A newly trained model entered as challenger: from now on it predicts in
/// shadow beside the champion, and both are scored on the same outcomes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChallengerStarted {
    /// The challenger (registry id).
    pub model: String,
    /// Why it was trained: `drift`, `schedule`, `manual`.
    pub reason: String,
    /// The median of its training targets, hours (its baseline).
    pub median_h: f64,
    /// Closed cases it was trained on.
    pub train_cases: u64,
    /// The loop's term it was decided in, on a shared log: the position of
    /// the driver's [`LoopTaken`]. The fold counts it only while that term
    /// is the newest (see [`LoopTaken`]); None on a log of one's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
}

impl ChallengerStarted {
    /// Type name in the log.
    pub const TYPE: &'static str = "ChallengerStarted";
    /// Current payload schema.
    pub const SCHEMA: u32 = 1;
}

/// A model became the champion: the one whose predictions count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelPromoted {
    /// The new champion.
    pub model: String,
    /// The champion it replaced, if any.
    pub replaced: Option<String>,
    /// Why: `first model`, `beat the champion`, `manual`.
    pub reason: String,
    /// The old champion's MAE on the shared outcomes, days.
    pub champion_mae_d: Option<f64>,
    /// The new champion's MAE on the same outcomes, days.
    pub challenger_mae_d: Option<f64>,
    /// Shared outcomes the comparison used.
    pub outcomes: u64,
    /// The loop's term it was decided in, on a shared log: the position of
    /// the driver's [`LoopTaken`]. The fold counts it only while that term
    /// is the newest (see [`LoopTaken`]); None on a log of one's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
}

impl ModelPromoted {
    /// Type name in the log.
    pub const TYPE: &'static str = "ModelPromoted";
    /// Current payload schema.
    pub const SCHEMA: u32 = 1;
}

/// A challenger did not beat the champion and stopped predicting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelRetired {
    /// The retired challenger.
    pub model: String,
    /// Why, in words.
    pub reason: String,
    /// The champion's MAE on the shared outcomes, days.
    pub champion_mae_d: Option<f64>,
    /// The challenger's MAE on the same outcomes, days.
    pub challenger_mae_d: Option<f64>,
    /// Shared outcomes the comparison used.
    pub outcomes: u64,
    /// The loop's term it was decided in, on a shared log: the position of
    /// the driver's [`LoopTaken`]. The fold counts it only while that term
    /// is the newest (see [`LoopTaken`]); None on a log of one's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
}

impl ModelRetired {
    /// Type name in the log.
    pub const TYPE: &'static str = "ModelRetired";
    /// Current payload schema.
    pub const SCHEMA: u32 = 1;
}

/// A retired model's bytes were let go to keep the browser's storage
/// bounded: its record, its scores and its place in the lineage stay in the
/// log; only what it would need to predict again is deleted, in every
/// browser that folds this event. The champion's and the challenger's bytes
/// are never released (the fold ignores an event that names either).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelBytesReleased {
    /// The model.
    pub model: String,
    /// Its size, bytes, as registered.
    pub size_bytes: u64,
    /// Why, in words.
    pub reason: String,
    /// The loop's term it was decided in, on a shared log (see [`LoopTaken`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
}

impl ModelBytesReleased {
    /// Type name in the log.
    pub const TYPE: &'static str = "ModelBytesReleased";
    /// Current payload schema.
    pub const SCHEMA: u32 = 1;
}

/// A browser took over a shared log's feedback loop: it holds the loop's
/// lease on the server, and from this event on the loop's decisions
/// (alarms, challengers, promotions, retirements) count only if they carry
/// this event's position as their `term`. A browser that lost the lease
/// while its requests hung, or a teammate replaying old decisions, may
/// still get events into the log; every copy folds them the same way: set
/// aside. The newest `LoopTaken` in the log's order is the term; the
/// browser that drives announces itself again if another one appears.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoopTaken {
    /// The browser's lasting id.
    pub browser: String,
    /// What the others are shown.
    pub name: String,
    /// The lease's revision on the server when it was taken (for the record).
    pub lease: u64,
}

impl LoopTaken {
    /// Type name in the log.
    pub const TYPE: &'static str = "LoopTaken";
    /// Current payload schema.
    pub const SCHEMA: u32 = 1;
}

/// A file was imported into the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportCompleted {
    /// File name.
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the file, hex: the same file imported twice is recognised.
    pub sha256: String,
    /// `csv`, `xes` or `cloudevents`.
    pub format: String,
    /// Prefix given to the file's case ids.
    pub label: String,
    /// Rows (events) in the file.
    pub rows: u64,
    /// Rows skipped as unreadable.
    pub skipped: u64,
    /// Cases imported.
    pub cases: u64,
    /// Events written, this one not included.
    pub events: u64,
    /// How the file was read (the CSV mapping, the completion rule).
    pub mapping: Value,
}

impl ImportCompleted {
    /// Type name in the log.
    pub const TYPE: &'static str = "ImportCompleted";
    /// Current payload schema.
    pub const SCHEMA: u32 = 1;
    /// The stream imports are recorded in.
    pub const STREAM: &'static str = "imports";
}

/// The log was cut after its last good event, because what followed could
/// not be read or broke the log's rules (Settings → Recover). Recorded as the
/// first event after the cut, so the cut stays visible in the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogRecovered {
    /// The last event kept.
    pub kept_to: u64,
    /// The head before the cut.
    pub old_head: u64,
    /// What was wrong at `kept_to + 1`.
    pub problem: String,
    /// Readable events after the cut, which went into the export.
    pub exported_after_cut: u64,
    /// The file everything readable was exported to.
    pub export_file: String,
}

impl LogRecovered {
    /// Type name in the log.
    pub const TYPE: &'static str = "LogRecovered";
    /// Current payload schema.
    pub const SCHEMA: u32 = 1;
    /// The stream recoveries are recorded in.
    pub const STREAM: &'static str = "recoveries";
}

fn object(v: Value) -> Result<Map<String, Value>, String> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(format!("expected a JSON object, found {other}")),
    }
}

fn take(m: &mut Map<String, Value>, field: &str) -> Result<Value, String> {
    m.remove(field)
        .ok_or_else(|| format!("missing field `{field}`"))
}

/// `CaseOpened` v1 → v2: the fixed fields move into `attributes`.
fn case_opened_v1_to_v2(v: Value) -> Result<Value, String> {
    let mut m = object(v)?;
    let case = take(&mut m, "case")?;
    // Whatever else v1 carried (customer, category, priority) is an attribute now.
    let attributes: Map<String, Value> = m.into_iter().filter(|(_, v)| !v.is_null()).collect();
    Ok(serde_json::json!({ "case": case, "attributes": attributes }))
}

/// `ActivityRecorded` v1 → v2: `user` is called `resource`.
fn activity_v1_to_v2(v: Value) -> Result<Value, String> {
    let mut m = object(v)?;
    let user = m.remove("user").unwrap_or(Value::Null);
    m.insert("resource".into(), user);
    Ok(Value::Object(m))
}

/// `ActivityRecorded` v2 → v3: minutes become hours; attributes appear.
fn activity_v2_to_v3(v: Value) -> Result<Value, String> {
    let mut m = object(v)?;
    let hours = match m.remove("minutes") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::Number(n)) => {
            let minutes = n.as_f64().ok_or("`minutes` is not a number")?;
            serde_json::json!(minutes / 60.0)
        }
        Some(other) => return Err(format!("`minutes` should be a number, found {other}")),
    };
    m.insert("hours".into(), hours);
    m.entry("attributes")
        .or_insert_with(|| Value::Object(Map::new()));
    Ok(Value::Object(m))
}

/// `CaseClosed` v1 → v2: an outcome field, unknown for old events.
fn case_closed_v1_to_v2(v: Value) -> Result<Value, String> {
    let mut m = object(v)?;
    m.entry("outcome").or_insert(Value::Null);
    Ok(Value::Object(m))
}

/// `PredictionRecorded` v1 → v2: an 80 % interval, absent from old predictions.
fn prediction_v1_to_v2(v: Value) -> Result<Value, String> {
    let mut m = object(v)?;
    m.entry("low_h").or_insert(Value::Null);
    m.entry("high_h").or_insert(Value::Null);
    Ok(Value::Object(m))
}

/// Every event type this build knows, with its upcasters.
pub fn schemas() -> &'static Schemas {
    static TABLE: OnceLock<Schemas> = OnceLock::new();
    TABLE.get_or_init(|| {
        Schemas::new()
            .declare(
                CaseOpened::TYPE,
                CaseOpened::SCHEMA,
                &[case_opened_v1_to_v2],
            )
            .declare(
                ActivityRecorded::TYPE,
                ActivityRecorded::SCHEMA,
                &[activity_v1_to_v2, activity_v2_to_v3],
            )
            .declare(
                CaseClosed::TYPE,
                CaseClosed::SCHEMA,
                &[case_closed_v1_to_v2],
            )
            .declare(ProcessChanged::TYPE, ProcessChanged::SCHEMA, &[])
            .declare(ImportCompleted::TYPE, ImportCompleted::SCHEMA, &[])
            .declare(LogRecovered::TYPE, LogRecovered::SCHEMA, &[])
            .declare(
                PredictionRecorded::TYPE,
                PredictionRecorded::SCHEMA,
                &[prediction_v1_to_v2],
            )
            .declare(DriftDetected::TYPE, DriftDetected::SCHEMA, &[])
            .declare(ChallengerStarted::TYPE, ChallengerStarted::SCHEMA, &[])
            .declare(ModelPromoted::TYPE, ModelPromoted::SCHEMA, &[])
            .declare(ModelRetired::TYPE, ModelRetired::SCHEMA, &[])
            .declare(LoopTaken::TYPE, LoopTaken::SCHEMA, &[])
            .declare(ModelBytesReleased::TYPE, ModelBytesReleased::SCHEMA, &[])
            .declare(MessageRefused::TYPE, MessageRefused::SCHEMA, &[])
            .declare(
                super::model::ModelTrained::TYPE,
                super::model::ModelTrained::SCHEMA,
                &[],
            )
    })
}
