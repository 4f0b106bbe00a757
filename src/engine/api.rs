//! The engine's face to the page: its messages ([`super::messages`],
//! [`super::imports`]) and every type they carry from the layers below —
//! a shared log's settings and news, an import's mapping and the sniffing
//! that fills the import form, the log check's report, an append's
//! expected version. The page (`src/ui/`) takes these from here and
//! imports nothing from `store`, `share`, `io` or `host` itself.

pub use crate::io::csv::{sniff, CsvMapping};
pub use crate::io::import::{detect_format, Format};
pub use crate::io::parsed::Completion;
pub use crate::io::time::{civil_from_days, TimeFormat};
pub use crate::share::jetstream::subject_token;
pub use crate::share::lease::{Holder, Standing, TTL_MS};
pub use crate::share::outbox::Conflict;
pub use crate::share::packs::PACK_EVENTS;
pub use crate::share::status::{Connect, Counts, Held, News, Settings};
pub use crate::store::verify::LogReport;
pub use crate::store::ExpectedVersion;
