//! Topic names, topic filters and matching (MQTT 3.1.1 §4.7).
//!
//! [`TopicName`] (what a PUBLISH carries) and [`TopicFilter`] (what a
//! SUBSCRIBE carries) are validated newtypes over a shared `Arc<str>`, so a
//! message fanned out to thousands of subscribers or kept as a retained
//! message shares one allocation. Topics are case sensitive and compared
//! byte for byte [MQTT-4.7.3-4]; levels are separated by `/`, and an empty
//! level is a level (`/finance` has two: `""` and `"finance"`).

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use thiserror::Error;

/// Largest encoded UTF-8 string (§1.5.3).
pub const MAX_STRING_LEN: usize = 65535;

/// Why a topic name or filter is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TopicError {
    #[error("topic is empty [MQTT-4.7.3-1]")]
    Empty,
    #[error("topic of {len} bytes exceeds 65535 [MQTT-4.7.3-3]")]
    TooLong { len: usize },
    #[error("topic contains U+0000 [MQTT-4.7.3-2]")]
    NullChar,
    #[error("topic name contains a wildcard character [MQTT-3.3.2-2]")]
    WildcardInName,
    #[error("'#' must be the last character and alone in its level [MQTT-4.7.1-2]")]
    MisplacedMultiLevel,
    #[error("'+' must occupy a whole level [MQTT-4.7.1-3]")]
    MisplacedSingleLevel,
    /// Valid MQTT, but deeper than a broker accepts
    /// (`BrokerConfig::max_topic_levels`); never returned by `new`.
    #[error("topic of {levels} levels exceeds the limit of {max}")]
    TooManyLevels { levels: usize, max: usize },
}

/// Levels of `s`: one more than its `/` separators.
fn level_count(s: &str) -> usize {
    s.bytes().filter(|&b| b == b'/').count() + 1
}

/// The checks names and filters share, in this order: empty, too long,
/// U+0000. Returns whether `s` holds a wildcard character, found in the
/// same pass (a plain loop the compiler vectorises; no call per topic).
fn check_common(s: &str) -> Result<bool, TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > MAX_STRING_LEN {
        return Err(TopicError::TooLong { len: s.len() });
    }
    let (mut nul, mut wild) = (false, false);
    for &b in s.as_bytes() {
        nul |= b == 0;
        wild |= (b == b'+') | (b == b'#');
    }
    if nul {
        return Err(TopicError::NullChar);
    }
    Ok(wild)
}

/// A topic name: at least one byte, no wildcards, no U+0000, ≤ 65535 bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicName(Arc<str>);

impl TopicName {
    /// Validate `s`.
    pub fn new(s: &str) -> Result<TopicName, TopicError> {
        TopicName::check(s)?;
        Ok(TopicName(Arc::from(s)))
    }
    /// Validate a shared string and keep it (no copy: a million publishers'
    /// topics are held once, by the workload and the MQTT plug-in).
    pub fn from_shared(s: Arc<str>) -> Result<TopicName, TopicError> {
        TopicName::check(&s)?;
        Ok(TopicName(s))
    }
    /// Validate `s` without building a name (the codec's borrowed views).
    pub fn check(s: &str) -> Result<(), TopicError> {
        if check_common(s)? {
            return Err(TopicError::WildcardInName);
        }
        Ok(())
    }
    /// A name from a string that already passed [`TopicName::check`].
    pub(crate) fn from_checked(s: &str) -> TopicName {
        debug_assert_eq!(TopicName::check(s), Ok(()));
        TopicName(Arc::from(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Levels, split at `/`.
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }
    /// Number of levels (`levels().count()`, without splitting).
    pub fn level_count(&self) -> usize {
        level_count(&self.0)
    }
    /// Topics beginning with `$` are not matched by filters starting with a
    /// wildcard [MQTT-4.7.2-1].
    pub fn is_system(&self) -> bool {
        self.0.starts_with('$')
    }
}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}
impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl Borrow<str> for TopicName {
    fn borrow(&self) -> &str {
        &self.0
    }
}
impl TryFrom<&str> for TopicName {
    type Error = TopicError;
    fn try_from(s: &str) -> Result<Self, TopicError> {
        TopicName::new(s)
    }
}

/// A topic filter: like a name, but `+` may be a whole level and `#` may be
/// the whole last level.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicFilter(Arc<str>);

impl TopicFilter {
    /// Validate `s`.
    pub fn new(s: &str) -> Result<TopicFilter, TopicError> {
        TopicFilter::check(s)?;
        Ok(TopicFilter(Arc::from(s)))
    }
    /// A filter from a string that already passed [`TopicFilter::check`].
    pub(crate) fn from_checked(s: &str) -> TopicFilter {
        debug_assert_eq!(TopicFilter::check(s), Ok(()));
        TopicFilter(Arc::from(s))
    }
    /// Validate `s` without building a filter (the codec's borrowed views).
    pub fn check(s: &str) -> Result<(), TopicError> {
        if !check_common(s)? {
            return Ok(());
        }
        let mut levels = s.split('/').peekable();
        while let Some(level) = levels.next() {
            let last = levels.peek().is_none();
            if level.contains('#') && (level != "#" || !last) {
                return Err(TopicError::MisplacedMultiLevel);
            }
            if level.contains('+') && level != "+" {
                return Err(TopicError::MisplacedSingleLevel);
            }
        }
        Ok(())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }
    /// Number of levels (`levels().count()`, without splitting).
    pub fn level_count(&self) -> usize {
        level_count(&self.0)
    }
    /// True when the filter contains `+` or `#`.
    pub fn has_wildcards(&self) -> bool {
        self.0.bytes().any(|b| b == b'+' || b == b'#')
    }
    /// The longest prefix (up to and including the last `/` before the first
    /// wildcard) that every matching topic starts with.
    pub fn literal_prefix(&self) -> &str {
        match self.0.find(['+', '#']) {
            None => &self.0,
            Some(i) => self.0.get(..i).unwrap_or(""),
        }
    }
    /// Does this filter match `topic`?
    pub fn matches(&self, topic: &TopicName) -> bool {
        matches(self, topic)
    }
}

impl fmt::Debug for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}
impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl TryFrom<&str> for TopicFilter {
    type Error = TopicError;
    fn try_from(s: &str) -> Result<Self, TopicError> {
        TopicFilter::new(s)
    }
}

/// Does `filter` match `topic` (§4.7.1)? `#` matches the parent level and
/// any number of child levels (`sport/#` matches `sport`); `+` matches
/// exactly one level, which may be empty (`sport/+` matches `sport/` but
/// not `sport`). A filter starting with a wildcard does not match a topic
/// starting with `$` [MQTT-4.7.2-1].
pub fn matches(filter: &TopicFilter, topic: &TopicName) -> bool {
    if topic.is_system() && filter.as_str().starts_with(['+', '#']) {
        return false;
    }
    let mut t = topic.levels();
    for f in filter.levels() {
        match f {
            "#" => return true,
            "+" => {
                if t.next().is_none() {
                    return false;
                }
            }
            lit => match t.next() {
                Some(l) if l == lit => {}
                _ => return false,
            },
        }
    }
    t.next().is_none()
}

/// The subscription filter of a topic template: every level holding a
/// placeholder becomes `+`.
pub fn template_filter(template: &str) -> String {
    template
        .split('/')
        .map(|l| if l.contains('{') { "+" } else { l })
        .collect::<Vec<_>>()
        .join("/")
}
