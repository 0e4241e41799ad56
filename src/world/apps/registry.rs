//! The one table of protocol plug-ins, and the metric columns it lays out.
//!
//! `Registry::builtin()` holds `udp`, `tcp`, `coap`, `mqtt` and `mqttsn`. A new
//! protocol is one more entry: `registry.register(PluginEntry::new("echo",
//! make_echo).columns(&["echo_replies"]))`. Every registered plug-in's
//! extension columns are always present in runs.csv and summary.csv (zero
//! or empty for flows of other protocols), after the core columns, in
//! registration order, with the host stack's `tcp_*` columns before the
//! built-in MQTT ones, the radio energy columns after them, then MQTT-SN's
//! and CoAP's exchange columns — the layout every earlier output has, new
//! groups appended — and later plug-ins' columns at the end.

use super::{AppId, Plugin};
use crate::metrics::summary::CORE_COLUMNS;
use crate::scenario::model::{ExtProtocol, ProtocolTable, Reliability, Scenario};

/// Who fills a group of extension columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnOwner {
    /// The host stack's TCP (`tcp_*`, every protocol over TCP adds to them).
    HostTcp,
    /// A plug-in.
    Plugin(AppId),
    /// The radio energy model (`energy_mj_*`).
    Energy,
}

pub(crate) use crate::scenario::columns::ENERGY_COLUMNS;

/// One protocol plug-in: its name (what flows' `protocol` says), how to make
/// one per run, its extension columns, and — for a plug-in registered beside
/// the built-in protocols — the reliabilities a flow may ask of it and the
/// check of its `[protocols.<name>]` section.
#[derive(Clone, Copy)]
pub struct PluginEntry {
    pub name: &'static str,
    /// Make the plug-in for one run of `sc`.
    pub new: fn(&Scenario) -> Box<dyn Plugin>,
    /// Its extension columns (names unique across the registry).
    pub columns: &'static [&'static str],
    /// Accepted reliabilities, the first the default (plug-ins only; the
    /// built-in protocols' rules live in the scenario loader).
    pub reliabilities: &'static [Reliability],
    /// Validate `[protocols.<name>]` (plug-ins only).
    pub check_section: fn(&toml::Value) -> Result<(), String>,
    /// Files of the extra tables it may write (`PluginOutput::tables`).
    pub tables: &'static [&'static str],
    builtin: bool,
}

impl std::fmt::Debug for PluginEntry {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        out.debug_struct("PluginEntry")
            .field("name", &self.name)
            .field("columns", &self.columns)
            .finish()
    }
}

fn any_section(_: &toml::Value) -> Result<(), String> {
    Ok(())
}

impl PluginEntry {
    /// A plug-in named `name`, made by `new`, without extension columns,
    /// accepting `best_effort` and any `[protocols.<name>]` section.
    pub fn new(name: &'static str, new: fn(&Scenario) -> Box<dyn Plugin>) -> Self {
        PluginEntry {
            name,
            new,
            columns: &[],
            reliabilities: &[Reliability::BestEffort],
            check_section: any_section,
            tables: &[],
            builtin: false,
        }
    }
    /// Writing these extra tables (file names).
    pub fn tables(mut self, files: &'static [&'static str]) -> Self {
        self.tables = files;
        self
    }
    /// With these extension columns.
    pub fn columns(mut self, columns: &'static [&'static str]) -> Self {
        self.columns = columns;
        self
    }
    /// Accepting these reliabilities (the first is the default).
    pub fn reliabilities(mut self, accepted: &'static [Reliability]) -> Self {
        self.reliabilities = accepted;
        self
    }
    /// Validating its section with `check`.
    pub fn section(mut self, check: fn(&toml::Value) -> Result<(), String>) -> Self {
        self.check_section = check;
        self
    }
    fn builtin(mut self) -> Self {
        self.builtin = true;
        self
    }
}

/// Plug-ins a registry holds: the world keeps which of them asked for a
/// flush in one 64-bit mask (one bit test per event, not a scan).
pub const MAX_PLUGINS: usize = 64;

/// Why a plug-in could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("a protocol named \"{0}\" is registered already")]
    DuplicateName(&'static str),
    #[error("column \"{0}\" exists already")]
    DuplicateColumn(&'static str),
    #[error("at most {MAX_PLUGINS} plug-ins")]
    Full,
}

/// The plug-ins of a run, in order.
#[derive(Debug, Clone)]
pub struct Registry {
    entries: Vec<PluginEntry>,
    groups: Vec<(ColumnOwner, &'static [&'static str])>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::builtin()
    }
}

impl Registry {
    /// The built-in protocols: `udp`, `tcp`, `coap`, `mqtt`, `mqttsn`, `http`.
    pub fn builtin() -> Registry {
        let entries = vec![
            PluginEntry::new("udp", super::udp::new).builtin(),
            PluginEntry::new("tcp", super::tcp_flow::new).builtin(),
            PluginEntry::new("coap", super::coap::new)
                .columns(&super::coap::COAP_COLUMNS)
                .tables(&["coap.csv"])
                .builtin(),
            PluginEntry::new("mqtt", super::mqtt::new)
                .columns(&super::mqtt::MQTT_COLUMNS)
                .tables(&["mqtt.csv"])
                .builtin(),
            PluginEntry::new("mqttsn", super::mqttsn::new)
                .columns(&super::mqttsn::MQTTSN_COLUMNS)
                .tables(&["mqttsn.csv"])
                .builtin(),
            PluginEntry::new("http", super::http::new).builtin(),
        ];
        let groups = vec![
            (
                ColumnOwner::HostTcp,
                &crate::world::host::tcp::TCP_COLUMNS[..],
            ),
            (
                ColumnOwner::Plugin(AppId(3)),
                &super::mqtt::MQTT_COLUMNS[..],
            ),
            (ColumnOwner::Energy, &ENERGY_COLUMNS[..]),
            (
                ColumnOwner::Plugin(AppId(4)),
                &super::mqttsn::MQTTSN_COLUMNS[..],
            ),
            // CoAP exchanges (issue #14), after everything before
            (
                ColumnOwner::Plugin(AppId(2)),
                &super::coap::COAP_COLUMNS[..],
            ),
        ];
        Registry { entries, groups }
    }

    /// Add a plug-in; its columns go at the end.
    pub fn register(&mut self, entry: PluginEntry) -> Result<AppId, RegistryError> {
        if self.entries.iter().any(|x| x.name == entry.name) {
            return Err(RegistryError::DuplicateName(entry.name));
        }
        let cols = self.metric_columns();
        if let Some(c) = entry.columns.iter().find(|c| cols.contains(c)) {
            return Err(RegistryError::DuplicateColumn(c));
        }
        if self.entries.len() >= MAX_PLUGINS {
            return Err(RegistryError::Full);
        }
        let id = u8::try_from(self.entries.len()).map_err(|_| RegistryError::Full)?;
        self.entries.push(entry);
        if !entry.columns.is_empty() {
            self.groups
                .push((ColumnOwner::Plugin(AppId(id)), entry.columns));
        }
        Ok(AppId(id))
    }

    /// The plug-ins, in order.
    pub fn entries(&self) -> &[PluginEntry] {
        &self.entries
    }

    /// The plug-in a flow's protocol names.
    pub fn index_of(&self, name: &str) -> Option<AppId> {
        self.entries
            .iter()
            .position(|e| e.name == name)
            .map(|i| AppId(i as u8))
    }

    /// What the scenario loader needs to know of the plug-ins beside the
    /// built-in protocols (`scenario::load_file_with`).
    pub fn protocol_table(&self) -> ProtocolTable {
        ProtocolTable {
            ext: self
                .entries
                .iter()
                .filter(|e| !e.builtin)
                .map(|e| ExtProtocol {
                    name: e.name,
                    reliabilities: e.reliabilities,
                    check_section: e.check_section,
                })
                .collect(),
        }
    }

    /// The groups of extension columns, in order.
    pub fn column_groups(&self) -> &[(ColumnOwner, &'static [&'static str])] {
        &self.groups
    }

    /// Every metric column of runs.csv, in order: the core ones, then each
    /// group's, then `violations` (the spec-oracle monitors', always last).
    pub fn metric_columns(&self) -> Vec<&'static str> {
        CORE_COLUMNS
            .iter()
            .copied()
            .chain(self.groups.iter().flat_map(|(_, c)| c.iter().copied()))
            .chain(std::iter::once(crate::scenario::expect::VIOLATIONS))
            .collect()
    }
}
