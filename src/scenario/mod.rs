//! Scenario files: TOML → validated `model::Scenario`.
pub mod model;
