//! `mqttsn-msgid-in-use` (MQTT-SN 1.2 §5.3.7, after MQTT's
//! [MQTT-2.3.1-2]): the MsgId lets a sender match a message with its
//! acknowledgement, so a client or gateway must not send a new (DUP = 0)
//! QoS 1 or 2 PUBLISH to a peer with a MsgId its PUBLISH to that peer
//! still holds: sent, and no PUBACK (QoS 1) or PUBCOMP (QoS 2) with that
//! MsgId received from the peer yet.
//!
//! Judged on the decoded datagrams (encapsulated ones by the client they
//! are for or from). MQTT-SN has no connection to end the in-flight state,
//! so it ends where the session does: a CONNECT a client sends starts a new
//! session between it and its gateways (in-flight PUBLISHes of either
//! direction are dropped from the rule, as a clean session discards them,
//! §6.3), and a node that crashes loses everything it held.

use super::{Monitors, Rule, Violation};
use crate::sim::SimTime;
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub(super) struct SnState {
    /// (sender node, peer node, MsgId) → QoS of the PUBLISH in flight.
    out: BTreeMap<(u32, u32, u16), u8>,
}

impl Monitors {
    /// `node` (client or gateway, not a forwarder relaying) sent peer
    /// `peer` a QoS `qos` PUBLISH with `msg_id` (`dup`: the DUP flag).
    #[allow(clippy::too_many_arguments)]
    pub fn mqttsn_publish_sent(
        &mut self,
        now: SimTime,
        node: u32,
        peer: u32,
        msg_id: u16,
        qos: u8,
        dup: bool,
        flow: Option<u32>,
    ) {
        if !(qos == 1 || qos == 2) {
            return;
        }
        let in_use = self.sn.out.insert((node, peer, msg_id), qos).is_some();
        if in_use && !dup {
            self.record(Violation {
                t: now,
                node,
                rule: Rule::MqttsnMsgIdInUse,
                flow,
                detail: format!(
                    "new QoS {qos} PUBLISH to node {peer} with MsgId {msg_id}, still in flight"
                ),
            });
        }
    }

    /// `node` received from `peer` a PUBACK (`qos` 1) or PUBCOMP (`qos` 2)
    /// with `msg_id`: its PUBLISH with that MsgId is complete.
    pub fn mqttsn_ack_received(&mut self, node: u32, peer: u32, msg_id: u16, qos: u8) {
        let k = (node, peer, msg_id);
        if self.sn.out.get(&k) == Some(&qos) {
            self.sn.out.remove(&k);
        }
    }

    /// Client `node` sent CONNECT: a new session with its gateways.
    pub fn mqttsn_connect_sent(&mut self, node: u32) {
        self.sn.out.retain(|k, _| k.0 != node && k.1 != node);
    }

    /// `node` crashed: what it held in flight is gone, and what its peers
    /// held towards it ends with the session the client starts again.
    pub fn mqttsn_node_reset(&mut self, node: u32) {
        self.sn.out.retain(|k, _| k.0 != node);
    }
}
