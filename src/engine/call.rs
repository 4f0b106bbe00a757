//! One typed channel between the page and the engine: each question the
//! page asks is a [`Request`] that names its answer, the page awaits it with
//! one `call` (no ids matched by hand, no pending map per kind of
//! question), and what went wrong comes as an [`EngineError`] that says
//! what the user should be told. The bytes between the threads stay the
//! [`ToEngine`] and [`Reply`] of [`super::messages`]: a request is a command
//! under an id, and every reply to it carries that id ([`Reply::id`]).

pub use super::messages::EngineError;
use super::messages::{Command, Export, Exported, HostCommand, Reply, ToEngine};
use crate::domain::model::ModelTrained;
use crate::projection::training_set::Finished;

/// How a reply under a request's id bears on it.
#[derive(Debug)]
pub enum Answer<R> {
    /// The request's answer: the call ends.
    Done(Result<R, EngineError>),
    /// A piece of a longer answer (an export's text): handed to the
    /// caller's progress, and the call goes on.
    Piece(Reply),
}

/// A question the page asks the engine, with the answer it waits for.
pub trait Request {
    /// What the answer carries.
    type Response;
    /// The question as a command under `id`.
    fn command(self, id: u32) -> ToEngine;
    /// What `reply` (one carrying the request's id) means for it.
    fn answer(reply: Reply) -> Answer<Self::Response>;
}

/// The newest `window` closed cases (0: all), in log order.
pub struct ClosedCases {
    /// How many of the newest.
    pub window: usize,
}

/// The answer to [`ClosedCases`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CasesAnswer {
    /// The closed cases, in log order.
    pub cases: Vec<Finished>,
    /// The position and domain time they reach.
    pub position: (u64, i64),
    /// The highest `model-N` the log knows.
    pub known_models: u64,
}

impl Request for ClosedCases {
    type Response = CasesAnswer;
    fn command(self, id: u32) -> ToEngine {
        Command::Cases {
            id,
            window: self.window,
        }
        .into()
    }
    fn answer(reply: Reply) -> Answer<CasesAnswer> {
        match reply {
            Reply::Cases {
                cases,
                position,
                known_models,
                ..
            } => Answer::Done(Ok(CasesAnswer {
                cases,
                position,
                known_models,
            })),
            other => Answer::Piece(other),
        }
    }
}

/// Train a model by hand in the engine's training worker, register it,
/// and let it enter the loop if `enter` says why; how it goes comes as
/// pieces ([`Reply::Progress`]).
pub struct TrainModel {
    /// The algorithm; None: chosen on validation.
    pub spec: Option<crate::ml::models::Spec>,
    /// The newest closed cases to learn from (0: all).
    pub window: usize,
    /// Why it enters the loop; None: only registered.
    pub enter: Option<String>,
}

impl Request for TrainModel {
    /// The record as registered, and a line for the page.
    type Response = (ModelTrained, String);
    fn command(self, id: u32) -> ToEngine {
        HostCommand::Train {
            id,
            spec: self.spec,
            window: self.window,
            enter: self.enter,
        }
        .into()
    }
    fn answer(reply: Reply) -> Answer<(ModelTrained, String)> {
        match reply {
            Reply::TrainedByHand { outcome, .. } => {
                Answer::Done(outcome.map(|(record, line)| (*record, line)))
            }
            other => Answer::Piece(other),
        }
    }
}

/// Run the backtest protocol on the closed cases the training set keeps,
/// in the engine's checks' worker; how it goes comes as pieces
/// ([`Reply::Progress`]).
pub struct RunBacktest;

impl Request for RunBacktest {
    type Response = crate::ml::backtest::Report;
    fn command(self, id: u32) -> ToEngine {
        HostCommand::Backtest { id }.into()
    }
    fn answer(reply: Reply) -> Answer<crate::ml::backtest::Report> {
        match reply {
            Reply::Backtested { outcome, .. } => Answer::Done(outcome.map(|report| *report)),
            other => Answer::Piece(other),
        }
    }
}

/// Check every record of the log (the integrity check) in the engine's
/// checks' worker; how far it got comes as pieces ([`Reply::Progress`]).
pub struct CheckLog;

impl Request for CheckLog {
    type Response = crate::store::verify::LogReport;
    fn command(self, id: u32) -> ToEngine {
        HostCommand::CheckLog { id }.into()
    }
    fn answer(reply: Reply) -> Answer<crate::store::verify::LogReport> {
        match reply {
            Reply::Checked { outcome, .. } => Answer::Done(outcome),
            other => Answer::Piece(other),
        }
    }
}

/// Read the log for a file; its text comes as pieces
/// ([`Reply::ExportPart`]).
pub struct ExportFile(pub Export);

impl Request for ExportFile {
    type Response = Exported;
    fn command(self, id: u32) -> ToEngine {
        HostCommand::Export { id, what: self.0 }.into()
    }
    fn answer(reply: Reply) -> Answer<Exported> {
        match reply {
            Reply::Exported { outcome, .. } => Answer::Done(outcome),
            other => Answer::Piece(other),
        }
    }
}

/// Cut the log after the newest salvage's last good event.
pub struct RecoverLog {
    /// The file the salvage's events were offered as.
    pub export_file: String,
    /// When the user agreed (ms since the epoch).
    pub at: i64,
}

impl Request for RecoverLog {
    /// The position of the cut's `LogRecovered`.
    type Response = u64;
    fn command(self, id: u32) -> ToEngine {
        HostCommand::Recover {
            id,
            export_file: self.export_file,
            at: self.at,
        }
        .into()
    }
    fn answer(reply: Reply) -> Answer<u64> {
        match reply {
            Reply::Recovered { outcome, .. } => Answer::Done(outcome),
            other => Answer::Piece(other),
        }
    }
}

/// Answer `request` from the replies under its id, as the page's `call`
/// does: pieces go to `piece`, the answer ends it, and replies that end
/// without one mean the engine went away.
pub fn answer_from<R: Request>(
    replies: impl IntoIterator<Item = Reply>,
    mut piece: impl FnMut(Reply),
) -> Result<R::Response, EngineError> {
    for reply in replies {
        match R::answer(reply) {
            Answer::Done(outcome) => return outcome,
            Answer::Piece(p) => piece(p),
        }
    }
    Err(EngineError::Gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_names_its_command_and_reads_only_its_answer() {
        let ToEngine::Engine(Command::Cases { id, window }) = ClosedCases { window: 40 }.command(7)
        else {
            panic!("a question about closed cases is Command::Cases");
        };
        assert_eq!((id, window), (7, 40));
        // Pieces go on, the answer ends the call.
        let mut pieces = Vec::new();
        let replies = vec![
            Reply::ExportPart {
                id: 3,
                text: "a\n".into(),
                so_far: 1,
            },
            Reply::ExportPart {
                id: 3,
                text: "b\n".into(),
                so_far: 2,
            },
            Reply::Exported {
                id: 3,
                outcome: Ok(Exported {
                    count: 2,
                    salvage: None,
                }),
            },
        ];
        let done = answer_from::<ExportFile>(replies, |p| pieces.push(p)).unwrap();
        assert_eq!(done.count, 2);
        assert_eq!(pieces.len(), 2);
    }

    #[test]
    fn a_training_by_hand_says_how_it_goes_and_ends_with_its_record_or_why_not() {
        let ToEngine::Host(HostCommand::Train {
            id, window, enter, ..
        }) = TrainModel {
            spec: None,
            window: 0,
            enter: Some("manual".into()),
        }
        .command(5)
        else {
            panic!("training by hand is the host's work");
        };
        assert_eq!((id, window, enter.as_deref()), (5, 0, Some("manual")));
        let progress = Reply::Progress {
            id: 5,
            message: "validating 3 folds".into(),
        };
        assert_eq!(progress.id(), Some(5));
        assert!(
            !progress.ends_request(),
            "progress is a piece: the call goes on"
        );
        let cancelled = Reply::TrainedByHand {
            id: 5,
            outcome: Err(EngineError::Cancelled),
        };
        assert!(cancelled.ends_request());
        let mut said = Vec::new();
        let outcome = answer_from::<TrainModel>(vec![progress, cancelled], |p| said.push(p));
        assert_eq!(outcome.unwrap_err().to_string(), "training cancelled");
        assert_eq!(said.len(), 1, "the progress reached the caller");
    }

    #[test]
    fn the_checks_are_the_hosts_work_and_end_with_their_own_answer() {
        assert!(matches!(
            RunBacktest.command(8),
            ToEngine::Host(HostCommand::Backtest { id: 8 })
        ));
        assert!(matches!(
            CheckLog.command(9),
            ToEngine::Host(HostCommand::CheckLog { id: 9 })
        ));
        let report = crate::store::verify::LogReport {
            events: 40,
            streams: 7,
            problem: None,
        };
        // Across the thread boundary as bytes, as the worker posts them.
        let crossed = |reply: Reply| -> Reply {
            crate::ml::protocol::decode(&crate::ml::protocol::encode(&reply)).unwrap()
        };
        let replies = vec![
            crossed(Reply::Progress {
                id: 9,
                message: "checked 20 of 40 events".into(),
            }),
            crossed(Reply::Checked {
                id: 9,
                outcome: Ok(report.clone()),
            }),
        ];
        let mut said = Vec::new();
        assert_eq!(
            answer_from::<CheckLog>(replies, |p| said.push(p)),
            Ok(report)
        );
        assert_eq!(said.len(), 1);
        // A backtest that could not run says why, typed.
        let refused = crossed(Reply::Backtested {
            id: 8,
            outcome: Err(EngineError::Check("a backtest needs closed cases".into())),
        });
        assert!(refused.ends_request());
        let err = answer_from::<RunBacktest>(vec![refused], |_| {}).unwrap_err();
        assert_eq!(err.to_string(), "a backtest needs closed cases");
    }

    #[test]
    fn replies_that_end_without_an_answer_say_the_engine_went_away() {
        let replies = vec![Reply::ExportPart {
            id: 1,
            text: String::new(),
            so_far: 0,
        }];
        let outcome = answer_from::<ExportFile>(replies, |_| {});
        assert_eq!(outcome.unwrap_err(), EngineError::Gone);
        assert!(EngineError::Gone.to_string().contains("try again"));
    }

    #[test]
    fn an_error_crosses_typed_and_says_what_to_do() {
        let replies = vec![Reply::Recovered {
            id: 2,
            outcome: Err(EngineError::NothingToCut("the log keeps its rules".into())),
        }];
        let err = answer_from::<RecoverLog>(replies, |_| {}).unwrap_err();
        assert!(matches!(err, EngineError::NothingToCut(_)));
        assert_eq!(err.to_string(), "nothing was cut: the log keeps its rules");
    }
}
