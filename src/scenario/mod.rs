//! Scenario files: TOML → validated `model::Scenario`.
//!
//! `load_file` / `load_str` parse a scenario (after applying `--set`
//! overrides with `apply_overrides`), expand groups, resolve names to indices
//! and check every field, reporting errors as `ScenarioError` with file,
//! line, column and field path. The file format is documented in
//! `scenarios/README.md`.
mod check;
pub mod columns;
pub mod error;
mod events;
pub mod expect;
pub mod flows;
mod load;
mod loss;
pub mod model;
mod mqtt;
mod mqttsn;
pub mod overload;
pub mod overrides;
mod paths;
pub mod processing;
mod protocols;
pub mod radio;
pub mod report;
pub(crate) mod schema;
mod security;
mod sweep;
pub mod topic_practice;
mod topology;
pub mod trace;
pub mod units;

pub use error::ScenarioError;
pub use load::{load_file, load_file_with, load_str, load_str_with};
pub use loss::allow_files_outside;
pub use overrides::apply_overrides;
