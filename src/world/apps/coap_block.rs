//! Block-wise transfer (RFC 7959) in the CoAP plug-in: with `[protocols.coap]
//! block_size`, a `put` flow whose body is larger than the block size sends
//! it as Block1 requests through a `proto::coap::BlockTransfer`, and the
//! receivers' `ResourceServer`s reassemble it (the message counts as
//! delivered when the whole body is stored). `get` polls fetch the reading
//! with Block2 the same way.
//!
//! Every block is its own request of the endpoint: it is tracked in
//! `Coap::reqs` like any request (so its bytes, retransmissions and give-up
//! count for its flow); the transfer's entry moves from one block's handle to
//! the next, keeping the first block's first transmission, so a flow's
//! `rtt_ms_*` is the whole transfer's time and `round_trip_success` counts
//! transfers. One transfer at a time runs per (client node, server): the
//! server keys a body being reassembled by (client, path), so two bodies for
//! one path must not interleave; later ones wait in FIFO order.

use super::{Coap, CoapReq};
use crate::net::addr::SockAddr;
use crate::proto::coap::block::BlockFailure;
use crate::proto::coap::{BlockOptions, BlockStep, BlockTransfer, Code, RequestHandle};
use crate::world::apps::Ctx;
use std::collections::{BTreeMap, VecDeque};

/// A transfer waiting for its (node, peer) to be free.
#[derive(Debug)]
struct Pending {
    transfer: BlockTransfer,
    req: CoapReq,
}

/// The plug-in's block-wise transfers.
#[derive(Debug, Default)]
pub(super) struct Blocks {
    /// Block size exponent (RFC 7959 SZX) of the scenario's `block_size`.
    pub(super) szx: u8,
    /// Running transfers by (client node, handle of the block in flight).
    active: BTreeMap<(u32, u64), BlockTransfer>,
    /// Per (client node, server): transfers waiting (the front one is the
    /// running one's successor).
    waiting: BTreeMap<(u32, SockAddr), VecDeque<Pending>>,
    /// (client node, server) pairs with a running transfer.
    busy: BTreeMap<(u32, SockAddr), ()>,
    /// Transfers completed / failed (counters).
    pub(super) done: u64,
    pub(super) failed: u64,
}

impl Blocks {
    pub(super) fn new(szx: u8) -> Self {
        Blocks {
            szx,
            ..Default::default()
        }
    }

    /// Whether a body of `len` bytes goes block-wise.
    pub(super) fn wants(&self, len: usize) -> bool {
        len > crate::proto::coap::block::size_of_szx(self.szx)
    }

    /// The node crashed: its transfers are gone.
    pub(super) fn forget_node(&mut self, node: u32) {
        self.active.retain(|k, _| k.0 != node);
        self.waiting.retain(|k, _| k.0 != node);
        self.busy.retain(|k, _| k.0 != node);
    }
}

impl Coap {
    /// Start `transfer` from `node` (or queue it behind the running one to
    /// the same server).
    pub(super) fn block_start(&mut self, node: usize, transfer: BlockTransfer, req: CoapReq) {
        let Some(b) = self.blocks.as_mut() else {
            return;
        };
        let key = (node as u32, transfer.peer());
        if b.busy.contains_key(&key) {
            b.waiting
                .entry(key)
                .or_default()
                .push_back(Pending { transfer, req });
            return;
        }
        self.block_launch(node, Pending { transfer, req });
    }

    fn block_launch(&mut self, node: usize, mut p: Pending) {
        let Some(c) = self.nodes[node].as_mut() else {
            return;
        };
        let Some(b) = self.blocks.as_mut() else {
            return;
        };
        let key = (node as u32, p.transfer.peer());
        match p.transfer.start(&mut c.ep) {
            Ok(h) => {
                b.busy.insert(key, ());
                self.reqs.insert((node as u32, h.0), p.req);
                b.active.insert((node as u32, h.0), p.transfer);
            }
            Err(_) => b.failed += 1,
        }
    }

    /// The (node, peer) pair is free again: start its next transfer.
    fn block_next(&mut self, node: usize, peer: SockAddr) {
        let key = (node as u32, peer);
        let Some(b) = self.blocks.as_mut() else {
            return;
        };
        b.busy.remove(&key);
        let next = b.waiting.get_mut(&key).and_then(VecDeque::pop_front);
        if b.waiting.get(&key).is_some_and(VecDeque::is_empty) {
            b.waiting.remove(&key);
        }
        if let Some(p) = next {
            self.block_launch(node, p);
        }
    }

    /// A response to request `h` of `node`: true if it belonged to a
    /// block-wise transfer (then handled here).
    pub(super) fn block_response(
        &mut self,
        ctx: &mut Ctx<'_, '_>,
        node: usize,
        h: RequestHandle,
        code: Code,
        block: &BlockOptions,
        payload: &[u8],
    ) -> bool {
        let Some(mut t) = self
            .blocks
            .as_mut()
            .and_then(|b| b.active.remove(&(node as u32, h.0)))
        else {
            return false;
        };
        let Some(c) = self.nodes[node].as_mut() else {
            return true;
        };
        match t.on_response(&mut c.ep, code, block, payload) {
            BlockStep::Next(h2) => {
                // the transfer's entry follows it to the next block
                if let Some(r) = self.reqs.remove(&(node as u32, h.0)) {
                    self.reqs.insert((node as u32, h2.0), r);
                }
                if let Some(b) = self.blocks.as_mut() {
                    b.active.insert((node as u32, h2.0), t);
                }
            }
            BlockStep::Done(code) => {
                self.finish_req(node, h, Some(ctx.now()));
                if let Some(b) = self.blocks.as_mut() {
                    b.done += 1;
                }
                // a polled reading fetched in blocks (`coap_mode = "get"`)
                if code == Code::CONTENT {
                    ctx.deliver(node as u32, t.body());
                }
                self.block_next(node, t.peer());
            }
            BlockStep::Failed(why) => {
                // an error response still answers the exchange (as for a
                // plain request: `round_trip_success` counts any response)
                let answered = matches!(why, BlockFailure::Response(_)).then(|| ctx.now());
                self.finish_req(node, h, answered);
                if let Some(b) = self.blocks.as_mut() {
                    b.failed += 1;
                }
                self.block_next(node, t.peer());
            }
        }
        true
    }

    /// Request `h` of `node` failed (given up, no response, reset): its
    /// transfer, if any, ends.
    pub(super) fn block_failed(&mut self, node: usize, h: RequestHandle) {
        let Some(t) = self
            .blocks
            .as_mut()
            .and_then(|b| b.active.remove(&(node as u32, h.0)))
        else {
            return;
        };
        if let Some(b) = self.blocks.as_mut() {
            b.failed += 1;
        }
        self.block_next(node, t.peer());
    }
}
