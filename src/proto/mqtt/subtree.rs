//! The broker's subscription tree: a trie keyed by topic level.
//!
//! Each node's children live in a `BTreeMap` keyed by the level string
//! (`"+"` and `"#"` are ordinary keys), and its subscribers in a `Vec` of
//! (session index, granted QoS) sorted by index. Matching a topic walks one
//! path per literal level plus the `+` and `#` branches, so its cost grows
//! with the topic's depth and the number of matching subscriptions, not with
//! the number of clients. Iteration order is deterministic throughout.
//!
//! No operation recurses: insert, remove, matching and drop loop with an
//! explicit stack, so a filter or topic of any depth (up to the 65535-byte
//! string limit, i.e. 65536 levels) is safe on a small thread stack. The
//! broker also refuses deep filters and topics
//! (`BrokerConfig::max_topic_levels`).

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

/// Iterative: the derived drop glue would recurse once per level and
/// overflow the stack on a deep enough filter. Children are moved onto an
/// explicit stack and each node is dropped with no children left.
impl Drop for Node {
    fn drop(&mut self) {
        if self.children.is_empty() {
            return;
        }
        let mut stack: Vec<Node> = std::mem::take(&mut self.children).into_values().collect();
        while let Some(mut node) = stack.pop() {
            stack.extend(std::mem::take(&mut node.children).into_values());
        }
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
    /// Nodes left without subscriptions and children are pruned.
    pub fn remove(&mut self, filter: &TopicFilter, session: SessionIdx) -> bool {
        let levels: Vec<&str> = filter.levels().collect();
        // Look the subscription up, noting the deepest node on the path that
        // stays when the leaf empties: the root, or a node with
        // subscriptions or another child. Everything below it on the path
        // then hangs by a single thread and is cut off in one piece.
        let mut node = &self.root;
        let mut keep = 0;
        for (depth, level) in levels.iter().enumerate() {
            if depth == 0 || !node.subs.is_empty() || node.children.len() > 1 {
                keep = depth;
            }
            match node.children.get(*level) {
                Some(child) => node = child,
                None => return false,
            }
        }
        let Ok(i) = node.subs.binary_search_by_key(&session, |s| s.0) else {
            return false;
        };
        let leaf_empties = node.subs.len() == 1 && node.children.is_empty();
        let depth = if leaf_empties { keep } else { levels.len() };
        let mut node = &mut self.root;
        for level in levels.iter().take(depth) {
            match node.children.get_mut(*level) {
                Some(child) => node = child,
                None => return false, // unreachable: the path was just found
            }
        }
        if leaf_empties {
            if let Some(level) = levels.get(keep) {
                // Dropped iteratively (`Node`'s `Drop`).
                drop(node.children.remove(*level));
            }
        } else {
            node.subs.remove(i);
        }
        self.len -= 1;
        true
    }

    /// Append every (session, granted QoS) whose filter matches `topic` to
    /// `out` (cleared first), one entry per session with the maximum QoS of
    /// its overlapping subscriptions, sorted by session index.
    pub fn matches(&self, topic: &TopicName, out: &mut Vec<(SessionIdx, QoS)>) {
        out.clear();
        walk(&self.root, topic, out);
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        out.dedup_by_key(|s| s.0);
    }
}

/// Append the subscriptions of every filter matching `topic` to `out`,
/// unsorted and with repeats, in depth-first order: at each node `#` first,
/// then the `+` subtree, then the literal subtree.
///
/// An explicit stack replaces recursion, so a topic of any depth cannot
/// overflow the thread's stack; entries are pushed in reverse so they pop in
/// the order the recursive walk visited them (the output sequence is the
/// same). Each node is visited at most once: a node's path fixes which topic
/// level it is compared with.
fn walk(root: &Node, topic: &TopicName, out: &mut Vec<(SessionIdx, QoS)>) {
    // (node, the topic levels after the node's own, `system`). `system` is
    // true only at the root of a `$` topic: wildcards there do not match it
    // [MQTT-4.7.2-1].
    let mut stack = vec![(root, topic.levels(), topic.is_system())];
    while let Some((node, mut levels, system)) = stack.pop() {
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
                if let Some(c) = node.children.get(level) {
                    stack.push((c, levels.clone(), false));
                }
                if !system {
                    if let Some(p) = node.children.get("+") {
                        stack.push((p, levels, false));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The walk as it was before it became iterative (recursive), kept as
    /// the reference for the order of its raw output.
    fn walk_recursive(
        node: &Node,
        mut levels: std::str::Split<'_, char>,
        system: bool,
        out: &mut Vec<(SessionIdx, QoS)>,
    ) {
        let multi = if system { None } else { node.children.get("#") };
        match levels.next() {
            None => {
                out.extend_from_slice(&node.subs);
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
                        walk_recursive(p, levels.clone(), false, out);
                    }
                }
                if let Some(c) = node.children.get(level) {
                    walk_recursive(c, levels, false, out);
                }
            }
        }
    }

    fn node_count(tree: &SubscriptionTree) -> usize {
        let mut n = 0;
        let mut stack = vec![&tree.root];
        while let Some(node) = stack.pop() {
            n += 1;
            let empty = node.children.is_empty() && node.subs.is_empty();
            assert!(n == 1 || !empty, "an empty node was left behind");
            stack.extend(node.children.values());
        }
        n
    }

    /// Deterministic xorshift64*.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
        }
    }

    const WORDS: [&str; 4] = ["a", "b", "", "$s"];

    fn random_filter(r: &mut Rng) -> TopicFilter {
        let n = 1 + r.below(5);
        let mut levels: Vec<&str> = Vec::new();
        for i in 0..n {
            levels.push(match r.below(10) {
                0 | 1 => "+",
                2 if i + 1 == n => "#",
                k => WORDS[k % WORDS.len()],
            });
        }
        let s = levels.join("/");
        TopicFilter::new(if s.is_empty() { "a" } else { &s }).expect("valid filter")
    }

    fn random_topic(r: &mut Rng) -> TopicName {
        let n = 1 + r.below(5);
        let levels: Vec<&str> = (0..n).map(|_| WORDS[r.below(WORDS.len())]).collect();
        let s = levels.join("/");
        TopicName::new(if s.is_empty() { "a" } else { &s }).expect("valid topic")
    }

    fn qos(r: &mut Rng) -> QoS {
        [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][r.below(3)]
    }

    #[test]
    fn iterative_walk_emits_the_recursive_walks_sequence() {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        let mut longest = 0;
        for _ in 0..200 {
            let mut tree = SubscriptionTree::new();
            for _ in 0..r.below(40) {
                let (f, s, q) = (random_filter(&mut r), r.below(8) as SessionIdx, qos(&mut r));
                tree.insert(&f, s, q);
            }
            for _ in 0..30 {
                let t = random_topic(&mut r);
                let (mut got, mut want) = (Vec::new(), Vec::new());
                walk(&tree.root, &t, &mut got);
                walk_recursive(&tree.root, t.levels(), t.is_system(), &mut want);
                assert_eq!(got, want, "raw walk order for {t:?}");
                longest = longest.max(got.len());
            }
        }
        assert!(
            longest >= 4,
            "the random trees exercise overlapping matches"
        );
    }

    #[test]
    fn remove_prunes_exactly_the_emptied_nodes() {
        let mut r = Rng(0x0123_4567_89AB_CDEF);
        for _ in 0..200 {
            let mut tree = SubscriptionTree::new();
            let mut subs: Vec<(TopicFilter, SessionIdx)> = Vec::new();
            for _ in 0..r.below(30) {
                let (f, s) = (random_filter(&mut r), r.below(6) as SessionIdx);
                if tree.insert(&f, s, qos(&mut r)) {
                    subs.push((f, s));
                }
            }
            // Remove a random half (and a few that do not exist).
            let mut kept = Vec::new();
            for (f, s) in subs {
                if r.below(2) == 0 {
                    assert!(tree.remove(&f, s));
                    assert!(!tree.remove(&f, s), "removed twice");
                } else {
                    kept.push((f, s));
                }
            }
            assert!(!tree.remove(&random_filter(&mut r), 99));
            assert_eq!(tree.len(), kept.len());
            // The pruned tree has exactly the nodes of one built from the
            // remaining subscriptions.
            let mut fresh = SubscriptionTree::new();
            for (f, s) in &kept {
                fresh.insert(f, *s, QoS::AtMostOnce);
            }
            assert_eq!(node_count(&tree), node_count(&fresh));
            for (f, s) in kept {
                assert!(tree.remove(&f, s));
            }
            assert!(tree.is_empty());
            assert_eq!(node_count(&tree), 1, "only the root is left");
        }
    }

    #[test]
    fn deepest_possible_filter_on_a_small_stack() {
        // 65535 bytes of `/`: the longest filter, 65536 empty levels.
        let run = || {
            let deep = "/".repeat(65_535);
            let f = TopicFilter::new(&deep).expect("valid");
            let t = TopicName::new(&deep).expect("valid");
            let hash = TopicFilter::new(&format!("{}#", "/".repeat(65_533))).expect("valid");
            let mut tree = SubscriptionTree::new();
            assert!(tree.insert(&f, 1, QoS::AtLeastOnce));
            assert!(tree.insert(&f, 2, QoS::AtMostOnce));
            assert!(tree.insert(&hash, 3, QoS::ExactlyOnce));
            let mut out = Vec::new();
            tree.matches(&t, &mut out);
            let want = [
                (1, QoS::AtLeastOnce),
                (2, QoS::AtMostOnce),
                (3, QoS::ExactlyOnce),
            ];
            assert_eq!(out, want);
            assert!(tree.remove(&f, 1));
            assert!(tree.remove(&hash, 3));
            assert_eq!(tree.len(), 1);
            drop(tree); // still 65536 levels deep
        };
        std::thread::Builder::new()
            .stack_size(64 << 10)
            .spawn(run)
            .expect("spawn")
            .join()
            .expect("no overflow");
    }
}
