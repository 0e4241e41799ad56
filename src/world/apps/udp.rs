//! The `udp` protocol: the no-reliability baseline. Each message is one UDP
//! datagram from the publisher to each intended receiver (broadcast as N
//! unicasts) on `[protocols.udp] port`; the receiving application reads the
//! message identity from the payload's application header.

use super::{Ctx, Message, Plugin};
use crate::net::packet::PacketMeta;
use crate::scenario::model::{Protocol, Scenario};
use crate::world::host::{DatagramApp, Received};

/// Source port of flow `fi` (ephemeral range, RFC 6335).
pub(crate) fn flow_src_port(fi: usize) -> u16 {
    49152 + (fi % 16384) as u16
}

#[derive(Debug, Default)]
struct Udp;

pub(super) fn new(_: &Scenario) -> Box<dyn Plugin> {
    Box::new(Udp)
}

impl Plugin for Udp {
    fn setup(&mut self, ctx: &mut Ctx<'_, '_>) {
        let sc = ctx.scenario();
        let port = sc.protocols.udp.port;
        for f in sc.flows.iter().filter(|f| f.protocol == Protocol::Udp) {
            for &r in &f.receivers {
                // the loader keeps ports of different protocols apart
                let _ = ctx.udp_bind(r, port);
            }
        }
    }

    fn publish(&mut self, ctx: &mut Ctx<'_, '_>, msg: Message<'_>) {
        let port = ctx.scenario().protocols.udp.port;
        let meta = PacketMeta {
            flow: msg.flow as u32,
            kind: "udp",
            counted: msg.counted,
            created: ctx.now(),
            app_bytes: msg.payload.len() as u16,
            ..Default::default()
        };
        let node = msg.node as usize;
        for &r in msg.receivers {
            if r == msg.node {
                // loopback: delivered without touching a link
                ctx.deliver(r, msg.payload);
            } else {
                ctx.udp_send(
                    (node, flow_src_port(msg.flow)),
                    (r as usize, port),
                    msg.payload,
                    meta,
                );
            }
        }
    }

    fn datagram_app(&mut self) -> Option<&mut dyn DatagramApp> {
        Some(self)
    }
}

impl DatagramApp for Udp {
    fn on_datagram(&mut self, ctx: &mut Ctx<'_, '_>, rx: Received<'_>) {
        ctx.deliver(rx.node, rx.data);
    }
}
