//! The broker's subscription tree: a trie keyed by topic level.
//!
//! Each node's children live in a `BTreeMap` keyed by the level string
//! (`"+"` and `"#"` are ordinary keys), and its subscribers in a `Vec` of
//! (session index, granted QoS) sorted by index. Matching a topic walks one
//! path per literal level plus the `+` and `#` branches, so its cost grows
//! with the topic's depth and the number of matching subscriptions, not with
//! the number of clients. Iteration order is deterministic throughout.

use std::collections::BTreeMap;

use super::packet::QoS;
use super::topic::{TopicFilter, TopicName};

/// Opaque index of a session in the broker's session table.
pub type SessionIdx = u32;

#[derive(Debug, Default)]
struct Node {
    children: BTreeMap<Box<str>, Node>,
    subs: Vec<(SessionIdx, QoS)>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.subs.is_empty()
    }
}

/// Subscriptions of all sessions.
#[derive(Debug, Default)]
pub struct SubscriptionTree {
    root: Node,
    len: usize,
}

impl SubscriptionTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of (filter, session) subscriptions.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Add or replace `session`'s subscription to `filter` [MQTT-3.8.4-3].
    /// Returns true when it is new.
    pub fn insert(&mut self, filter: &TopicFilter, session: SessionIdx, qos: QoS) -> bool {
        let mut node = &mut self.root;
        for level in filter.levels() {
            node = node.children.entry(Box::from(level)).or_default();
        }
        match node.subs.binary_search_by_key(&session, |s| s.0) {
            Ok(i) => {
                if let Some(s) = node.subs.get_mut(i) {
                    s.1 = qos;
                }
                false
            }
            Err(i) => {
                node.subs.insert(i, (session, qos));
                self.len += 1;
                true
            }
        }
    }

    /// Remove `session`'s subscription to `filter`; true if it existed.
    pub fn remove(&mut self, filter: &TopicFilter, session: SessionIdx) -> bool {
        let levels: Vec<&str> = filter.levels().collect();
        let removed = remove_rec(&mut self.root, &levels, session);
        if removed {
            self.len -= 1;
        }
        removed
    }

    /// Append every (session, granted QoS) whose filter matches `topic` to
    /// `out` (cleared first), one entry per session with the maximum QoS of
    /// its overlapping subscriptions, sorted by session index.
    pub fn matches(&self, topic: &TopicName, out: &mut Vec<(SessionIdx, QoS)>) {
        out.clear();
        walk(&self.root, topic.levels(), topic.is_system(), out);
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        out.dedup_by_key(|s| s.0);
    }
}

fn remove_rec(node: &mut Node, levels: &[&str], session: SessionIdx) -> bool {
    match levels.split_first() {
        None => match node.subs.binary_search_by_key(&session, |s| s.0) {
            Ok(i) => {
                node.subs.remove(i);
                true
            }
            Err(_) => false,
        },
        Some((first, rest)) => {
            let Some(child) = node.children.get_mut(*first) else {
                return false;
            };
            let removed = remove_rec(child, rest, session);
            if child.is_empty() {
                node.children.remove(*first);
            }
            removed
        }
    }
}

fn walk(
    node: &Node,
    mut levels: std::str::Split<'_, char>,
    system: bool,
    out: &mut Vec<(SessionIdx, QoS)>,
) {
    // `system` is true only at the root of a `$` topic: wildcards there do
    // not match it [MQTT-4.7.2-1].
    let multi = if system { None } else { node.children.get("#") };
    match levels.next() {
        None => {
            out.extend_from_slice(&node.subs);
            // "sport/#" also matches "sport" (§4.7.1.2).
            if let Some(m) = multi {
                out.extend_from_slice(&m.subs);
            }
        }
        Some(level) => {
            if let Some(m) = multi {
                out.extend_from_slice(&m.subs);
            }
            if !system {
                if let Some(p) = node.children.get("+") {
                    walk(p, levels.clone(), false, out);
                }
            }
            if let Some(c) = node.children.get(level) {
                walk(c, levels, false, out);
            }
        }
    }
}
