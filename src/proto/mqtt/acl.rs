//! Access control: which topics a client may publish to and subscribe to
//! (issue 18; documented in docs/mqtt.md, "Access control").
//!
//! An [`Acl`] is an ordered list of [`AclRule`]s. The rules are pure data
//! and the checks pure functions, so the broker, the scenario loader and
//! the spec-oracle monitors judge by the same code.
//!
//! * **Which rule applies: first match.** A client's rule is the first
//!   rule whose `clients` glob matches its client id and whose `users`
//!   glob matches its user name (an absent glob matches anything; a
//!   `users` glob never matches a client without a user name). Later rules
//!   are not consulted, so list specific rules before general ones. A
//!   client matched by no rule may do nothing (default deny). An empty
//!   ACL (no rules) allows everything: the broker without access control.
//! * **Publish**: a topic name is allowed when one of the rule's `publish`
//!   patterns matches it as an MQTT filter would (§4.7: `+` one level,
//!   `#` the rest, and a pattern starting with a wildcard does not match a
//!   `$` topic). A will is a publish by its client, checked when it would
//!   be published.
//! * **Subscribe**: a topic filter is allowed only when one of the rule's
//!   `subscribe` patterns *covers* it — every topic the filter could match
//!   is matched by that one pattern ([`covers`]). So under `sensors/#` the
//!   filters `sensors/#`, `sensors/+/temp`, `sensors/a` and `sensors`
//!   (which `sensors/#` matches too) are allowed, and `#`, `+/temp` and
//!   `sensorsX/#` are refused.
//!   Coverage is judged per pattern: a filter that only the union of two
//!   patterns covers is refused (conservative: never lets through a topic
//!   the rule does not allow).
//! * **Substitution**: in a pattern `%c` stands for the client id and `%u`
//!   for the user name (as in mosquitto's `pattern` lines). A pattern
//!   whose value would contain `/`, `+` or `#`, or that uses `%u` for a
//!   client without a user name, grants nothing (a client id like `a/#`
//!   cannot widen its own rule).

use std::fmt;

use thiserror::Error;

use super::topic::TopicFilter;

/// What a client tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AclAction {
    /// A PUBLISH to a topic name.
    Publish,
    /// A SUBSCRIBE filter.
    Subscribe,
    /// The client's will, when the broker would publish it.
    Will,
}

impl fmt::Display for AclAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AclAction::Publish => "publish",
            AclAction::Subscribe => "subscribe",
            AclAction::Will => "will",
        })
    }
}

/// What the broker does with a 3.1.1 PUBLISH the ACL refuses
/// ([MQTT-3.3.5-2] allows both).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DenyPublish {
    /// Acknowledge it as usual (PUBACK / PUBREC…PUBCOMP) and forward it to
    /// nobody. The default (mosquitto's behaviour).
    #[default]
    Drop,
    /// Close the network connection without acknowledging it (the will is
    /// published, if allowed: the client did not DISCONNECT).
    Disconnect,
}

/// One rule: who it applies to, and what they may publish and subscribe.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclRule {
    /// Glob on the client id (`*` any run of characters, `?` one);
    /// `None` matches every client id.
    pub clients: Option<String>,
    /// Glob on the user name; `None` matches every client, with or without
    /// a user name.
    pub users: Option<String>,
    /// Topic patterns the client may publish to.
    pub publish: Vec<String>,
    /// Topic patterns that bound what the client may subscribe to.
    pub subscribe: Vec<String>,
}

/// Why a pattern or glob is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AclError {
    #[error("not a valid topic pattern: {0}")]
    Topic(#[from] super::topic::TopicError),
    #[error("'%' must be followed by 'c' (client id) or 'u' (user name)")]
    BadSubstitution,
    #[error("a glob cannot be empty (use \"*\" for every name)")]
    EmptyGlob,
}

/// Check a publish/subscribe pattern: a valid MQTT topic filter once `%c`
/// and `%u` are replaced, with no other `%` sequence.
pub fn check_pattern(p: &str) -> Result<(), AclError> {
    let mut probe = String::with_capacity(p.len());
    let mut chars = p.chars();
    while let Some(ch) = chars.next() {
        if ch == '%' {
            match chars.next() {
                Some('c') | Some('u') => probe.push('x'),
                _ => return Err(AclError::BadSubstitution),
            }
        } else {
            probe.push(ch);
        }
    }
    TopicFilter::new(&probe)?;
    Ok(())
}

/// Check a `clients`/`users` glob.
pub fn check_glob(g: &str) -> Result<(), AclError> {
    if g.is_empty() {
        return Err(AclError::EmptyGlob);
    }
    Ok(())
}

/// Does glob `pat` (`*` any run of characters, `?` exactly one, anything
/// else itself) match all of `s`?
pub fn glob_match(pat: &str, s: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let t: Vec<char> = s.chars().collect();
    // iterative matching with one backtrack point (the last `*`)
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        match p.get(i) {
            Some('*') => {
                star = Some((i, j));
                i += 1;
            }
            Some(&c) if c == '?' || Some(&c) == t.get(j) => {
                i += 1;
                j += 1;
            }
            _ => match star {
                Some((si, sj)) => {
                    i = si + 1;
                    j = sj + 1;
                    star = Some((si, sj + 1));
                }
                None => return false,
            },
        }
    }
    p.get(i..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

/// Does `pattern` (a topic filter) match topic name `topic` (§4.7.1,
/// including [MQTT-4.7.2-1] for `$` topics)?
pub fn pattern_matches(pattern: &str, topic: &str) -> bool {
    if topic.starts_with('$') && pattern.starts_with(['+', '#']) {
        return false;
    }
    let mut t = topic.split('/');
    for p in pattern.split('/') {
        match p {
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

/// Does `pattern` cover `filter`: is every topic `filter` can match also
/// matched by `pattern`? Level by level: a `#` in the pattern covers the
/// rest of the filter; a `+` covers one filter level that is not `#`; a
/// literal covers only the same literal. A pattern starting with a
/// wildcard does not cover a filter starting with a `$` level (the
/// pattern matches no `$` topic).
pub fn covers(pattern: &str, filter: &str) -> bool {
    if filter.starts_with('$') && pattern.starts_with(['+', '#']) {
        return false;
    }
    let mut f = filter.split('/');
    for p in pattern.split('/') {
        match p {
            "#" => return true,
            "+" => match f.next() {
                None | Some("#") => return false,
                Some(_) => {}
            },
            lit => match f.next() {
                Some(l) if l == lit => {}
                _ => return false,
            },
        }
    }
    f.next().is_none()
}

/// `pattern` with `%c` and `%u` replaced; `None` when a value is missing
/// or would change the pattern's levels (contains `/`, `+` or `#`).
fn substitute<'a>(
    pattern: &'a str,
    client_id: &str,
    username: Option<&str>,
) -> Option<std::borrow::Cow<'a, str>> {
    if !pattern.contains('%') {
        return Some(std::borrow::Cow::Borrowed(pattern));
    }
    let safe = |v: &str| !v.is_empty() && !v.contains(['/', '+', '#']);
    let mut out = String::with_capacity(pattern.len() + client_id.len());
    let mut chars = pattern.chars();
    while let Some(ch) = chars.next() {
        if ch != '%' {
            out.push(ch);
            continue;
        }
        let v = match chars.next() {
            Some('c') => client_id,
            Some('u') => username?,
            _ => return None,
        };
        if !safe(v) {
            return None;
        }
        out.push_str(v);
    }
    Some(std::borrow::Cow::Owned(out))
}

/// The access-control list: ordered rules, first match (module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acl {
    rules: Vec<AclRule>,
}

impl Acl {
    /// An ACL of `rules`, each pattern and glob checked
    /// ([`check_pattern`], [`check_glob`]).
    pub fn new(rules: Vec<AclRule>) -> Result<Acl, AclError> {
        for r in &rules {
            for g in r.clients.iter().chain(&r.users) {
                check_glob(g)?;
            }
            for p in r.publish.iter().chain(&r.subscribe) {
                check_pattern(p)?;
            }
        }
        Ok(Acl { rules })
    }

    /// No rules: everything is allowed.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rules(&self) -> &[AclRule] {
        &self.rules
    }

    /// The rule that applies to this client (first match), if any.
    pub fn rule_for(&self, client_id: &str, username: Option<&str>) -> Option<&AclRule> {
        self.rules.iter().find(|r| {
            r.clients
                .as_deref()
                .is_none_or(|g| glob_match(g, client_id))
                && r.users
                    .as_deref()
                    .is_none_or(|g| username.is_some_and(|u| glob_match(g, u)))
        })
    }

    /// May this client publish to `topic` (a topic name)?
    pub fn allows_publish(&self, client_id: &str, username: Option<&str>, topic: &str) -> bool {
        if self.is_empty() {
            return true;
        }
        self.rule_for(client_id, username).is_some_and(|r| {
            r.publish.iter().any(|p| {
                substitute(p, client_id, username).is_some_and(|p| pattern_matches(&p, topic))
            })
        })
    }

    /// May this client subscribe to `filter` (a topic filter)? Only when
    /// one `subscribe` pattern of its rule covers it ([`covers`]).
    pub fn allows_subscribe(&self, client_id: &str, username: Option<&str>, filter: &str) -> bool {
        if self.is_empty() {
            return true;
        }
        self.rule_for(client_id, username).is_some_and(|r| {
            r.subscribe
                .iter()
                .any(|p| substitute(p, client_id, username).is_some_and(|p| covers(&p, filter)))
        })
    }

    /// `allows_publish` or `allows_subscribe` by action (a will is a
    /// publish).
    pub fn allows(
        &self,
        action: AclAction,
        client_id: &str,
        username: Option<&str>,
        topic: &str,
    ) -> bool {
        match action {
            AclAction::Publish | AclAction::Will => self.allows_publish(client_id, username, topic),
            AclAction::Subscribe => self.allows_subscribe(client_id, username, topic),
        }
    }
}

/// Why the broker refused a SUBSCRIBE filter or a PUBLISH, so a version's
/// edge can answer with the right code: 3.1.1 has one (SUBACK 0x80; a
/// refused PUBLISH is acknowledged or the connection closed), 5.0 tells
/// them apart ([`Refusal::reason_code`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The ACL does not allow it: 5.0 reason 0x87 Not authorized.
    NotAuthorized,
    /// Deeper than `BrokerConfig::max_topic_levels`: 5.0 reason 0x8F
    /// Topic Filter invalid (SUBSCRIBE) / 0x90 Topic Name invalid.
    TooManyLevels,
}

impl Refusal {
    /// The MQTT 5.0 reason code for this refusal of `action`.
    pub fn reason_code(self, action: AclAction) -> super::v5::ReasonCode {
        use super::v5::ReasonCode;
        match (self, action) {
            (Refusal::NotAuthorized, _) => ReasonCode::NOT_AUTHORIZED,
            (Refusal::TooManyLevels, AclAction::Subscribe) => ReasonCode::TOPIC_FILTER_INVALID,
            (Refusal::TooManyLevels, _) => ReasonCode::TOPIC_NAME_INVALID,
        }
    }
}
