//! Shortest-path routing over the topology.
//!
//! Only routers forward (DESIGN.md); end hosts (clients, servers, brokers, …)
//! send and receive but never carry transit traffic. Routes therefore have the
//! shape `host → router … router → host`, so the router subgraph is all that
//! needs all-pairs routes: the topology is a petgraph `Graph` whose router
//! subgraph is searched with `petgraph::algo::dijkstra` from every router, and a
//! next hop towards any destination is then found from the sender's router
//! neighbours and the destination's adjacency (direct links are looked up on
//! the shorter of the two adjacency lists), so a router with 10,000 hosts
//! finds the next hop towards one of them without scanning the others.
//! 10,000 hosts behind one router cost 10,000 adjacency entries, not 10⁸
//! route entries.
//!
//! Metric: hop count first, then the sum of propagation delays, then the lower
//! link index (a fixed tie-break, so routes are deterministic). Routes are
//! recomputed whenever an event takes a link down or up; links that are down
//! do not exist for routing. A destination with no path gives `None` and the
//! caller counts `drops_no_route`.

use petgraph::graph::{NodeIndex, UnGraph};

/// Cost of one hop: one hop dominates any sum of delays below 2^40 ns (18 min).
fn hop_cost(delay_ns: u64) -> u64 {
    (1u64 << 40) + delay_ns.min((1u64 << 40) - 1)
}

/// One end of a link seen from a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Adjacent {
    pub neighbor: u32,
    pub link: u32,
    /// Direction index of the link for traffic leaving this node (0: a→b, 1: b→a).
    pub dir: u8,
}

/// Each node's list of adjacent link ends, all in one array (compressed
/// sparse rows): one allocation for the topology instead of one per node,
/// and one memory access less per lookup (issue 22: 24 bytes of `Vec`
/// header and a heap block per node, twice, at a million clients).
#[derive(Debug)]
struct Lists {
    /// `start[i]..start[i + 1]`: node i's entries in `items`.
    start: Vec<u32>,
    items: Vec<Adjacent>,
}

impl Lists {
    /// Node `i`'s entries, in the order `per_node` gave them.
    fn of(&self, i: usize) -> &[Adjacent] {
        let (a, b) = (self.start[i] as usize, self.start[i + 1] as usize);
        &self.items[a..b]
    }

    fn from_fn(n: usize, mut per_node: impl FnMut(usize, &mut Vec<Adjacent>)) -> Lists {
        let mut l = Lists {
            start: Vec::with_capacity(n + 1),
            items: Vec::new(),
        };
        l.start.push(0);
        for i in 0..n {
            per_node(i, &mut l.items);
            l.start.push(l.items.len() as u32);
        }
        l.items.shrink_to_fit();
        l
    }
}

/// The routing state of a topology.
#[derive(Debug)]
pub(crate) struct Routing {
    is_router: Vec<bool>,
    /// Adjacency per node, in link order.
    adj: Lists,
    /// The entries of `adj` whose neighbour is a router, in link order.
    radj: Lists,
    link_cost: Vec<u64>,
    link_up: Vec<bool>,
    /// Router node ids and each node's position among routers.
    routers: Vec<u32>,
    router_pos: Vec<u32>,
    /// dist[i * R + j]: cost from router i to router j over up links (u64::MAX = none).
    dist: Vec<u64>,
}

const NOT_ROUTER: u32 = u32::MAX;

impl Routing {
    /// `links`: (a, b, delay_ns) per link index; `is_router` per node.
    pub(crate) fn new(is_router: Vec<bool>, links: &[(u32, u32, u64)]) -> Self {
        let n = is_router.len();
        // counting sort by node: each node's entries in link order, as
        // pushing them link by link would give
        let mut start = vec![0u32; n + 1];
        for &(a, b, _) in links {
            start[a as usize + 1] += 1;
            start[b as usize + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut fill: Vec<u32> = start[..n].to_vec();
        let none = Adjacent {
            neighbor: 0,
            link: 0,
            dir: 0,
        };
        let mut items = vec![none; start[n] as usize];
        for (i, &(a, b, _)) in links.iter().enumerate() {
            for (at, neighbor, dir) in [(a, b, 0u8), (b, a, 1u8)] {
                let k = &mut fill[at as usize];
                items[*k as usize] = Adjacent {
                    neighbor,
                    link: i as u32,
                    dir,
                };
                *k += 1;
            }
        }
        let adj = Lists { start, items };
        let mut routers = Vec::new();
        let mut router_pos = vec![NOT_ROUTER; n];
        for (i, &r) in is_router.iter().enumerate() {
            if r {
                router_pos[i] = routers.len() as u32;
                routers.push(i as u32);
            }
        }
        let radj = Lists::from_fn(n, |i, out| {
            out.extend(adj.of(i).iter().filter(|e| is_router[e.neighbor as usize]))
        });
        let mut r = Routing {
            is_router,
            adj,
            radj,
            link_cost: links.iter().map(|l| hop_cost(l.2)).collect(),
            link_up: vec![true; links.len()],
            routers,
            router_pos,
            dist: Vec::new(),
        };
        r.recompute();
        r
    }

    pub(crate) fn adjacency(&self, node: usize) -> &[Adjacent] {
        self.adj.of(node)
    }

    /// Mark a link up or down and recompute routes if that changed anything.
    pub(crate) fn set_link_up(&mut self, link: usize, up: bool) {
        if self.link_up[link] != up {
            self.link_up[link] = up;
            self.recompute();
        }
    }

    /// All-pairs router distances over the router subgraph (petgraph Dijkstra).
    fn recompute(&mut self) {
        let r = self.routers.len();
        let mut g: UnGraph<u32, u64> = UnGraph::with_capacity(r, r);
        let idx: Vec<NodeIndex> = self.routers.iter().map(|&n| g.add_node(n)).collect();
        for &a in &self.routers {
            for e in self.adj.of(a as usize) {
                // each undirected link once (from its `a` end), up and router-to-router
                if e.dir == 0
                    && self.link_up[e.link as usize]
                    && self.is_router[e.neighbor as usize]
                {
                    let (pa, pb) = (
                        self.router_pos[a as usize],
                        self.router_pos[e.neighbor as usize],
                    );
                    g.add_edge(
                        idx[pa as usize],
                        idx[pb as usize],
                        self.link_cost[e.link as usize],
                    );
                }
            }
        }
        self.dist = vec![u64::MAX; r * r];
        for (i, &start) in idx.iter().enumerate() {
            let d = petgraph::algo::dijkstra(&g, start, None, |e| *e.weight());
            for (node, cost) in d {
                self.dist[i * r + node.index()] = cost;
            }
        }
    }

    fn router_dist(&self, a: u32, b: u32) -> u64 {
        let r = self.routers.len();
        let (pa, pb) = (self.router_pos[a as usize], self.router_pos[b as usize]);
        self.dist[pa as usize * r + pb as usize]
    }

    /// Cost from router `r` to destination `dst` (router or host).
    fn cost_to(&self, r: u32, dst: u32) -> u64 {
        if r == dst {
            return 0;
        }
        if self.is_router[dst as usize] {
            return self.router_dist(r, dst);
        }
        // a host is reached through one of its up links to a router (or directly)
        let mut best = u64::MAX;
        for e in self.adj.of(dst as usize) {
            if !self.link_up[e.link as usize] {
                continue;
            }
            let via = e.neighbor;
            let c = if via == r {
                self.link_cost[e.link as usize]
            } else if self.is_router[via as usize] {
                self.router_dist(r, via)
                    .saturating_add(self.link_cost[e.link as usize])
            } else {
                u64::MAX
            };
            best = best.min(c);
        }
        best
    }

    /// Hops on the route from `from` to `dst` (`Some(0)` when they are the
    /// same node, `None` when `dst` is unreachable).
    pub(crate) fn hops(&self, from: usize, dst: usize) -> Option<u32> {
        let mut at = from;
        let mut hops = 0u32;
        while at != dst {
            at = self.next_hop(at, dst)?.neighbor as usize;
            hops += 1;
            if hops as usize > self.is_router.len() {
                return None; // cannot happen on shortest paths; bounded anyway
            }
        }
        Some(hops)
    }

    /// Next hop from `from` towards `dst`: the adjacency entry to send on, or
    /// `None` when `dst` is unreachable (or `from == dst`). Among equal-cost
    /// choices the lowest link index wins.
    pub(crate) fn next_hop(&self, from: usize, dst: usize) -> Option<Adjacent> {
        if from == dst {
            return None;
        }
        let mut best: Option<(u64, Adjacent)> = None;
        let mut offer = |c: u64, e: Adjacent| {
            if best.is_none_or(|(bc, be)| (c, e.link) < (bc, be.link)) {
                best = Some((c, e));
            }
        };
        // direct links between the two, found on the shorter adjacency list
        if self.adj.of(from).len() <= self.adj.of(dst).len() {
            for e in self.adj.of(from) {
                if e.neighbor as usize == dst && self.link_up[e.link as usize] {
                    offer(self.link_cost[e.link as usize], *e);
                }
            }
        } else {
            for e in self.adj.of(dst) {
                if e.neighbor as usize == from && self.link_up[e.link as usize] {
                    let out = Adjacent {
                        neighbor: dst as u32,
                        link: e.link,
                        dir: 1 - e.dir,
                    };
                    offer(self.link_cost[e.link as usize], out);
                }
            }
        }
        // through a neighbouring router (hosts do not forward)
        for e in self.radj.of(from) {
            if e.neighbor as usize == dst || !self.link_up[e.link as usize] {
                continue;
            }
            let rest = self.cost_to(e.neighbor, dst as u32);
            if rest == u64::MAX {
                continue;
            }
            offer(self.link_cost[e.link as usize].saturating_add(rest), *e);
        }
        best.map(|(_, e)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// h0 - r1 - r2 - h3, plus a longer path r1 - r4 - r5 - r2.
    fn diamond() -> Routing {
        let is_router = vec![false, true, true, false, true, true];
        let links = [
            (0, 1, 1),
            (1, 2, 1),
            (2, 3, 1),
            (1, 4, 1),
            (4, 5, 1),
            (5, 2, 1),
        ];
        Routing::new(is_router, &links)
    }

    #[test]
    fn shortest_path_by_hops() {
        let r = diamond();
        assert_eq!(r.next_hop(0, 3).map(|e| e.link), Some(0));
        assert_eq!(r.next_hop(1, 3).map(|e| e.link), Some(1));
        assert_eq!(r.next_hop(2, 3).map(|e| e.link), Some(2));
        assert_eq!(r.next_hop(3, 0).map(|e| (e.link, e.dir)), Some((2, 1)));
    }

    #[test]
    fn reroutes_around_a_down_link_and_back() {
        let mut r = diamond();
        r.set_link_up(1, false);
        assert_eq!(r.next_hop(1, 3).map(|e| e.link), Some(3));
        assert_eq!(r.next_hop(4, 3).map(|e| e.link), Some(4));
        r.set_link_up(1, true);
        assert_eq!(r.next_hop(1, 3).map(|e| e.link), Some(1));
    }

    #[test]
    fn hosts_do_not_forward() {
        // r0 - h1 - r2: no path r0 -> r2 through the host
        let r = Routing::new(vec![true, false, true], &[(0, 1, 1), (1, 2, 1)]);
        assert!(r.next_hop(0, 2).is_none());
        assert_eq!(r.next_hop(0, 1).map(|e| e.link), Some(0));
    }

    #[test]
    fn unreachable_when_cut() {
        let mut r = diamond();
        r.set_link_up(2, false);
        assert!(r.next_hop(0, 3).is_none());
    }

    #[test]
    fn delay_breaks_hop_ties() {
        // h0 - r1 - r2 - h4 and r1 - r3 - h4 ... equal hops, lower delay wins
        let is_router = vec![false, true, true, true, false];
        let links = [(0, 1, 1), (1, 2, 50), (2, 4, 1), (1, 3, 5), (3, 4, 1)];
        let r = Routing::new(is_router, &links);
        assert_eq!(r.next_hop(1, 4).map(|e| e.link), Some(3));
    }
}
