//! An import the engine's worker runs: the order the page sends (the chosen
//! file travels beside it, as the browser's own `File`), and the news the
//! page hears back until the import ends. Reading, staging and committing a
//! file is the worker's work; the page only shows the news.

use crate::io::csv::CsvMapping;
use crate::io::import::Format;
use crate::io::parsed::Completion;
use serde::{Deserialize, Serialize};

/// What the page asks of the worker about imports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ImportCommand {
    /// Import the file sent with this order.
    Start(Box<ImportOrder>),
    /// Stop the import `id`: a commit in flight is aborted (the log stays
    /// as it was), a stream being played stops where it is.
    Cancel(u32),
}

/// One file to import and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportOrder {
    /// Said again in every piece of news.
    pub id: u32,
    /// The file's name.
    pub name: String,
    /// Its format.
    pub format: Format,
    /// CSV columns (CSV only).
    pub mapping: Option<CsvMapping>,
    /// Which cases are complete.
    pub completion: Completion,
    /// Play it into the log at this many domain seconds per wall second,
    /// instead of committing it at once.
    pub stream: Option<f64>,
    /// Skip unreadable rows instead of stopping.
    pub skip_bad: bool,
    /// Import it even though the same file was imported before.
    pub again: bool,
}

/// What the page hears of an import. Every import ends with exactly one of
/// [`ImportNews::Done`], [`ImportNews::Duplicate`], [`ImportNews::Cancelled`]
/// or [`ImportNews::Failed`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ImportNews {
    /// Working: a line for the status, and how much of this pass is done.
    Progress {
        /// What it is doing, in words.
        line: String,
        /// 0–1, when known.
        fraction: Option<f64>,
    },
    /// Events were committed; the log's head is now at least this.
    Committed(u64),
    /// The staging area could not be cleared afterwards (the import itself
    /// is as reported).
    Leftover(String),
    /// Finished, in words.
    Done(String),
    /// The same file was imported before: ask the user, then send the order
    /// again with `again` set.
    Duplicate(String),
    /// Stopped by the user. `streamed`: events played so far stay.
    Cancelled {
        /// It was being played as a stream.
        streamed: bool,
    },
    /// It failed; nothing was committed unless it was being streamed.
    Failed {
        /// What happened, where, and what to do.
        message: String,
        /// Skipping unreadable rows would get past it.
        skippable: bool,
    },
}

impl ImportNews {
    /// Whether this news ends the import.
    pub fn ends(&self) -> bool {
        !matches!(
            self,
            ImportNews::Progress { .. } | ImportNews::Committed(_) | ImportNews::Leftover(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::protocol::{decode, encode};

    #[test]
    fn an_order_and_its_news_cross_the_boundary_unchanged() {
        let order = ImportCommand::Start(Box::new(ImportOrder {
            id: 7,
            name: "helpdesk.csv".into(),
            format: Format::Csv,
            mapping: None,
            completion: Completion::EndActivity("Closed".into()),
            stream: Some(86_400.0),
            skip_bad: true,
            again: false,
        }));
        assert_eq!(decode::<ImportCommand>(&encode(&order)).unwrap(), order);
        let news = ImportNews::Failed {
            message: "row 3: no timestamp".into(),
            skippable: true,
        };
        assert_eq!(decode::<ImportNews>(&encode(&news)).unwrap(), news);
    }

    #[test]
    fn only_an_answer_ends_an_import() {
        assert!(!ImportNews::Progress {
            line: String::new(),
            fraction: None
        }
        .ends());
        assert!(!ImportNews::Committed(3).ends());
        assert!(!ImportNews::Leftover("x".into()).ends());
        assert!(ImportNews::Done("ok".into()).ends());
        assert!(ImportNews::Duplicate("again?".into()).ends());
        assert!(ImportNews::Cancelled { streamed: false }.ends());
    }
}
