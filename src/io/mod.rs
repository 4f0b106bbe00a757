//! Event logs in and out: CSV and XES import, CloudEvents export and import.
//! Pure parsers: they read bytes and produce events; the page does the I/O.

pub mod cases_csv;
pub mod cloudevents;
pub mod csv;
pub mod import;
pub mod parsed;
pub mod scenario;
pub mod staged;
pub mod time;
pub mod xes;
