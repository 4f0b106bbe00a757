//! Given / when / then for the engine's message API: a desk (an engine over
//! the memory store, a simulated process feeding it, a registry in memory),
//! a command, and what came of it — the replies and the events the engine
//! appended. One behaviour per test, without hand-written reply loops:
//!
//! ```text
//! let mut desk = given(policy, seed);
//! let asked = desk.events_until_asked();       // given: cases closed
//! let then = desk.when(Command::Head(0));      // when: a command
//! assert_eq!(then.appended_of("ModelPromoted"), 1);   // then
//! ```

use super::messages::{Command, Driver, Reply};
use crate::domain::model::{ModelTrained, Spec};
use crate::domain::simulator::{Settings, Simulator};
use crate::log::Envelope;
use crate::ml::feedback_loop::Policy;
use crate::ml::models::Algorithm;
use crate::ml::registry::train_with_holdout;
use crate::projection::feedback::Feedback;
use crate::projection::training_set::Finished;
use crate::projection::ProjectionSet;
use crate::store::memory::MemoryStore;
use crate::store::{by_stream, EventStore};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// A registry in memory: record and bytes by id.
pub type Models = Rc<RefCell<BTreeMap<String, (ModelTrained, Vec<u8>)>>>;

fn block<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

/// An engine over a log in memory, a simulated process that writes to it,
/// and a registry.
pub struct Desk {
    /// The engine behind its message API.
    pub d: Driver<MemoryStore, Models>,
    /// Its registry.
    pub models: Models,
    sim: Simulator,
}

/// What a command came to.
#[derive(Debug)]
pub struct Then {
    /// What the engine answered.
    pub replies: Vec<Reply>,
    /// What it appended to the log meanwhile, in order.
    pub appended: Vec<Envelope>,
}

/// A desk whose engine follows `policy`, fed by the simulator seeded `seed`.
pub fn given(policy: Policy, seed: u64) -> Desk {
    let models: Models = Default::default();
    let engine = super::Engine::new(ProjectionSet::default(), policy);
    Desk {
        d: Driver::new(MemoryStore::new(), models.clone(), engine),
        models,
        sim: Simulator::new(Settings {
            seed,
            ..Settings::default()
        }),
    }
}

impl Desk {
    /// The loop on, with the engine's policy.
    pub fn started(mut self) -> Desk {
        let policy = self.d.engine().policy.clone();
        self.when(Command::Start {
            policy,
            driver: None,
        });
        self
    }

    /// The simulator's next `n` events, committed from outside the engine
    /// (another tab, an import); the engine not yet told.
    pub fn events(&mut self, n: usize) -> &mut Desk {
        block(
            self.d
                .store()
                .append_batch(by_stream(self.sim.next_events(n))),
        )
        .unwrap();
        self
    }

    /// When the page sends `command`: the replies, and what the engine
    /// appended while answering.
    pub fn when(&mut self, command: Command) -> Then {
        let head = block(self.d.store().head()).unwrap();
        let now = || 0.0;
        let replies = block(self.d.handle(command, &now));
        let appended = block(self.d.store().read_all(head + 1, usize::MAX)).unwrap();
        Then { replies, appended }
    }

    /// Events, 50 at a time, each followed by the new head, until the
    /// engine asks for a model: that answer.
    pub fn events_until_asked(&mut self) -> Then {
        for _ in 0..400 {
            self.events(50);
            let then = self.when(Command::Head(0));
            if then.asked().is_some() {
                return then;
            }
        }
        panic!("the engine never asked for a model in 20,000 events");
    }

    /// The model `asked` for, trained and registered as the page's
    /// trainer would (bytes in the registry, `ModelTrained` in the log),
    /// under `id`; the engine not yet told.
    pub fn train(&mut self, asked: &Then, id: &str) -> ModelTrained {
        let (_, cases) = asked.asked().expect("a model was asked for");
        register(&self.models, self.d.store(), cases, id)
    }

    /// Train what `asked` wanted under `id` and tell the engine.
    pub fn trained(&mut self, asked: &Then, id: &str) -> Then {
        let reason = asked.asked().expect("a model was asked for").0.to_string();
        let record = self.train(asked, id);
        self.when(Command::Trained {
            record: Box::new(record),
            reason,
        })
    }

    /// How many events of `event_type` the log holds.
    pub fn count(&self, event_type: &str) -> usize {
        block(self.d.store().read_all(1, usize::MAX))
            .unwrap()
            .iter()
            .filter(|e| e.event_type == event_type)
            .count()
    }

    /// The loop's state as the engine folded it.
    pub fn feedback(&self) -> &Feedback {
        &self.d.engine().set().feedback.state
    }

    /// The log's head.
    pub fn head(&self) -> u64 {
        block(self.d.store().head()).unwrap()
    }
}

/// Train a small forest on `cases` as model `id`, put its bytes in `models`
/// and its `ModelTrained` in `store`.
pub fn register(
    models: &Models,
    store: &MemoryStore,
    cases: &[Finished],
    id: &str,
) -> ModelTrained {
    let spec = Spec {
        trees: 10,
        ..Spec::new(Algorithm::RandomForest)
    };
    let trained = train_with_holdout(&spec, cases, 0.2, &|| 0.0).unwrap();
    let mut record = trained.record;
    record.id = id.into();
    models
        .borrow_mut()
        .insert(id.into(), (record.clone(), trained.bytes));
    let event = crate::log::NewEvent::new(
        format!("{id}-trained"),
        ModelTrained::TYPE,
        ModelTrained::SCHEMA,
        0,
        &record,
    );
    block(store.append(id, crate::store::ExpectedVersion::NoStream, vec![event])).unwrap();
    record
}

impl Then {
    /// The model the engine asked for: why, and on which cases.
    pub fn asked(&self) -> Option<(&str, &[Finished])> {
        self.replies.iter().find_map(|r| match r {
            Reply::Train { reason, cases, .. } => Some((reason.as_str(), cases.as_slice())),
            _ => None,
        })
    }

    /// Events of `event_type` the engine appended.
    pub fn appended_of(&self, event_type: &str) -> usize {
        self.appended
            .iter()
            .filter(|e| e.event_type == event_type)
            .count()
    }

    /// Predictions the engine said it recorded.
    pub fn predictions(&self) -> usize {
        self.replies
            .iter()
            .map(|r| match r {
                Reply::CaughtUp { predictions, .. } => *predictions,
                _ => 0,
            })
            .sum()
    }

    /// What the engine said in words (notes and failures).
    pub fn said(&self) -> Vec<&str> {
        self.replies
            .iter()
            .filter_map(|r| match r {
                Reply::Note(s) | Reply::Failed(s) => Some(s.as_str()),
                _ => None,
            })
            .collect()
    }
}
