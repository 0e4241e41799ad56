//! Protocol traces (`qossim run --trace`, docs/traces.md): `trace.csv`, one
//! row per protocol event per node, streamed as the run goes.
//!
//! Off unless asked: `World::trace` is `None` and every hook is one test.
//! The rows are written at the points that write `packets.csv`
//! (`World::packet_row`, `World::radio_row`), where a source host sends a
//! packet (`World::host_output`), where a destination host's IP layer hands
//! a datagram to its transport (`World::ip_deliver_parsed`, reassembly),
//! where a message is composed (`World::compose`) and where an application
//! receives one (`Ctx::deliver_message`). Nothing here decides anything:
//! the trace only reads packets' bytes and metadata.
//!
//! Every packet a host sends gets a serial number (`pkt`), kept beside its
//! pool slot and copied to its fragments and duplicates, so the rows of one
//! packet (send, each hop, lost or recv) can be joined.

use crate::metrics::record::csv_field;
use crate::metrics::sink::Sink;
use crate::net::ip;
use crate::net::packet::{PacketHandle, PacketMeta, NO_FLOW};
use crate::scenario::model::Scenario;
use crate::sim::SimTime;
use std::fmt::Write as _;
use std::io::{self, Write};

/// Header of `trace.csv`.
pub const TRACE_HEADER: &str =
    "run_id,t_ns,node,peer,layer,event,pkt,src,dst,kind,ids,bytes,msg,outcome";

/// What `--trace` asks for: names of nodes and flows to keep (empty: all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceOptions {
    pub nodes: Vec<String>,
    pub flows: Vec<String>,
}

/// `TraceOptions` resolved against a scenario: per node and per flow,
/// whether its rows are kept (`None`: all).
#[derive(Debug, Clone, Default)]
pub struct TraceFilter {
    nodes: Option<Vec<bool>>,
    flows: Option<Vec<bool>>,
}

impl TraceFilter {
    /// Resolve the names of `opts` against `sc`; an unknown name is an
    /// error naming it (and the names there are).
    pub fn resolve(sc: &Scenario, opts: &TraceOptions) -> Result<Self, String> {
        let pick = |what: &str, flag: &str, wanted: &[String], names: &[&str]| {
            if wanted.is_empty() {
                return Ok(None);
            }
            let mut on = vec![false; names.len()];
            for w in wanted {
                match names.iter().position(|n| n == w) {
                    Some(i) => on[i] = true,
                    None => {
                        return Err(format!(
                            "{flag}: the scenario has no {what} named \"{w}\" ({what}s: {})",
                            names.join(", ")
                        ))
                    }
                }
            }
            Ok(Some(on))
        };
        let nodes: Vec<&str> = sc.nodes.iter().map(|n| n.name.as_str()).collect();
        let flows: Vec<&str> = sc.flows.iter().map(|f| f.name.as_str()).collect();
        Ok(TraceFilter {
            nodes: pick("node", "--trace-nodes", &opts.nodes, &nodes)?,
            flows: pick("flow", "--trace-flows", &opts.flows, &flows)?,
        })
    }
}

/// The trace writer of a run.
pub(crate) struct Tracer {
    out: Box<dyn Sink>,
    filter: TraceFilter,
    run_id: u64,
    /// Per flow, the publisher node of each message id (ids are dense per
    /// flow: 4 bytes a message, to name messages carried in packets).
    publishers: Vec<Vec<u32>>,
    /// Serial number of the packet in each pool slot (0: none).
    serials: Vec<u32>,
    next_serial: u32,
    line: String,
    ids: String,
    net: crate::net::l3::NetPlan,
}

/// One row's fields beyond time, node and the packet.
struct Row<'a> {
    node: usize,
    peer: Option<usize>,
    layer: &'a str,
    event: &'a str,
    outcome: &'a str,
}

impl Tracer {
    pub(crate) fn new(
        mut out: Box<dyn Sink>,
        filter: TraceFilter,
        run_id: u64,
        flows: usize,
        net: crate::net::l3::NetPlan,
    ) -> io::Result<Self> {
        writeln!(out, "{TRACE_HEADER}")?;
        Ok(Tracer {
            out,
            filter,
            run_id,
            publishers: vec![Vec::new(); flows],
            serials: Vec::new(),
            next_serial: 0,
            line: String::new(),
            ids: String::new(),
            net,
        })
    }

    fn addr_node(&self, a: Option<crate::net::addr::Addr>) -> Option<usize> {
        a.and_then(|a| self.net.addr_node(a))
    }

    pub(crate) fn finish(mut self) -> io::Result<Box<dyn Sink>> {
        self.out.flush()?;
        Ok(self.out)
    }

    fn keep(&self, node: Option<usize>, flow: u32) -> bool {
        let n = match (&self.filter.nodes, node) {
            (None, _) => true,
            (Some(on), Some(n)) => on.get(n).copied().unwrap_or(false),
            (Some(_), None) => false,
        };
        let f = match &self.filter.flows {
            None => true,
            Some(on) => flow != NO_FLOW && on.get(flow as usize).copied().unwrap_or(false),
        };
        n && f
    }

    /// The packet in slot `pkt` is a new one a host sends: its serial.
    fn assign(&mut self, pkt: PacketHandle) -> u32 {
        self.next_serial += 1;
        let i = pkt.0 as usize;
        if self.serials.len() <= i {
            self.serials.resize(i + 1, 0);
        }
        self.serials[i] = self.next_serial;
        self.next_serial
    }

    fn serial(&self, pkt: PacketHandle) -> u32 {
        self.serials.get(pkt.0 as usize).copied().unwrap_or(0)
    }

    /// `copy` is a fragment or duplicate of `of`: same serial.
    pub(crate) fn copy(&mut self, of: PacketHandle, copy: PacketHandle) {
        let s = self.serial(of);
        let i = copy.0 as usize;
        if self.serials.len() <= i {
            self.serials.resize(i + 1, 0);
        }
        self.serials[i] = s;
    }

    /// The message tag `flow:publisher:seq` of message `msg` of `flow`.
    fn tag(&self, names: &[String], sc: &Scenario, flow: u32, msg: u32) -> Option<String> {
        let publ = *self.publishers.get(flow as usize)?.get(msg as usize)?;
        Some(format!(
            "{}:{}:{}",
            sc.flows[flow as usize].name, names[publ as usize], msg
        ))
    }

    /// Message `msg` of `flow` composed by publisher node `node`.
    pub(crate) fn publish(
        &mut self,
        now: SimTime,
        ctx: (&Scenario, &[String]),
        flow: usize,
        msg: u32,
        node: u32,
        bytes: usize,
    ) -> io::Result<()> {
        let p = &mut self.publishers[flow];
        // ids are dense (0, 1, …); a wrapped id starts over
        if msg as usize == p.len() {
            p.push(node);
        } else if let Some(slot) = p.get_mut(msg as usize) {
            *slot = node;
        }
        if !self.keep(Some(node as usize), flow as u32) {
            return Ok(());
        }
        let (sc, names) = ctx;
        let tag = self.tag(names, sc, flow as u32, msg).unwrap_or_default();
        let kind = sc.flows[flow].protocol.as_str();
        self.app_row(now, names, node as usize, "publish", kind, bytes, &tag)
    }

    /// Message `msg` of `flow` reached the application at `node`; `event`
    /// says how (`deliver`, `deliver_repeat`, `deliver_unrecorded`).
    pub(crate) fn deliver(
        &mut self,
        now: SimTime,
        ctx: (&Scenario, &[String]),
        flow: usize,
        msg: u32,
        node: u32,
        event: &str,
    ) -> io::Result<()> {
        if flow >= self.publishers.len() || !self.keep(Some(node as usize), flow as u32) {
            return Ok(());
        }
        let (sc, names) = ctx;
        let tag = self.tag(names, sc, flow as u32, msg).unwrap_or_default();
        let kind = sc.flows[flow].protocol.as_str();
        let bytes = sc.flows[flow].payload_bytes as usize;
        self.app_row(now, names, node as usize, event, kind, bytes, &tag)
    }

    #[allow(clippy::too_many_arguments)]
    fn app_row(
        &mut self,
        now: SimTime,
        names: &[String],
        node: usize,
        event: &str,
        kind: &str,
        bytes: usize,
        tag: &str,
    ) -> io::Result<()> {
        self.line.clear();
        let _ = writeln!(
            self.line,
            "{},{},{},,app,{},,,,{},,{},{},",
            self.run_id,
            now.0,
            csv_field(&names[node]),
            event,
            kind,
            bytes,
            csv_field(tag)
        );
        self.out.write_all(self.line.as_bytes())
    }

    /// Host `node` sends `pkt` (a new packet: it gets its serial here).
    pub(crate) fn send(
        &mut self,
        now: SimTime,
        ctx: (&Scenario, &[String]),
        node: usize,
        pkt: PacketHandle,
        p: &crate::net::packet::Packet,
    ) -> io::Result<()> {
        self.assign(pkt);
        let dst = self.addr_node(self.net.dst_of(&p.data));
        let row = Row {
            node,
            peer: dst,
            layer: "ip",
            event: "send",
            outcome: "",
        };
        self.packet_row(now, ctx, row, self.serial(pkt), &p.data, &p.meta)
    }

    /// A hop of `pkt` (a `packets.csv` row): sent on a link from `from` to
    /// `to` (`outcome` delivered) or lost (`outcome` says how). Without a
    /// link, the row's node is the packet's source host (its destination
    /// for `lost_processing`, which happens there).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn hop(
        &mut self,
        now: SimTime,
        ctx: (&Scenario, &[String]),
        link: Option<(usize, usize)>,
        pkt: PacketHandle,
        p: &crate::net::packet::Packet,
        outcome: &str,
    ) -> io::Result<()> {
        let src = self.addr_node(self.net.src_of(&p.data));
        let dst = self.addr_node(self.net.dst_of(&p.data));
        let (node, peer, layer) = match link {
            Some((f, t)) => (Some(f), Some(t), "link"),
            None if outcome == "lost_processing" => (dst, None, "ip"),
            None => (src, dst, "ip"),
        };
        let Some(node) = node else {
            return Ok(());
        };
        let row = Row {
            node,
            peer,
            layer,
            event: if outcome == "delivered" {
                "hop"
            } else {
                "lost"
            },
            outcome,
        };
        self.packet_row(now, ctx, row, self.serial(pkt), &p.data, &p.meta)
    }

    /// `pkt` is lost at `node` without a packets.csv row (`outcome`
    /// `lost_node_down`: the node was down when the packet reached it or
    /// left a queue of it).
    pub(crate) fn lost_at(
        &mut self,
        now: SimTime,
        ctx: (&Scenario, &[String]),
        node: usize,
        pkt: PacketHandle,
        p: &crate::net::packet::Packet,
        outcome: &str,
    ) -> io::Result<()> {
        let row = Row {
            node,
            peer: None,
            layer: "ip",
            event: "lost",
            outcome,
        };
        self.packet_row(now, ctx, row, self.serial(pkt), &p.data, &p.meta)
    }

    /// A frame on a radio medium (a `packets.csv` row of `world::radio`):
    /// no bytes to decode there, the kind and size only.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn radio_hop(
        &mut self,
        at: SimTime,
        names: &[String],
        from: usize,
        to: Option<usize>,
        meta: &PacketMeta,
        kind: &str,
        bytes: u32,
        outcome: &str,
    ) -> io::Result<()> {
        if !self.keep(Some(from), meta.flow) {
            return Ok(());
        }
        self.line.clear();
        let _ = writeln!(
            self.line,
            "{},{},{},{},radio,{},,,,{},,{},,{}",
            self.run_id,
            at.0,
            csv_field(&names[from]),
            to.map_or("*", |t| names[t].as_str()),
            if outcome == "delivered" {
                "hop"
            } else {
                "lost"
            },
            kind,
            bytes,
            outcome
        );
        self.out.write_all(self.line.as_bytes())
    }

    /// Destination host `node` takes the datagram `data` (whole: reassembled
    /// when it came in fragments) whose last piece was in slot `pkt`.
    pub(crate) fn recv(
        &mut self,
        now: SimTime,
        ctx: (&Scenario, &[String]),
        node: usize,
        pkt: PacketHandle,
        data: &[u8],
        meta: &PacketMeta,
    ) -> io::Result<()> {
        let src = self.addr_node(self.net.src_of(data));
        let row = Row {
            node,
            peer: src,
            layer: "ip",
            event: "recv",
            outcome: "",
        };
        self.packet_row(now, ctx, row, self.serial(pkt), data, meta)
    }

    fn packet_row(
        &mut self,
        now: SimTime,
        ctx: (&Scenario, &[String]),
        row: Row<'_>,
        serial: u32,
        data: &[u8],
        meta: &PacketMeta,
    ) -> io::Result<()> {
        if !self.keep(Some(row.node), meta.flow) {
            return Ok(());
        }
        let (sc, names) = ctx;
        let mut ids = std::mem::take(&mut self.ids);
        ids.clear();
        let msg = describe(data, meta, &mut ids)
            .filter(|&(f, _)| (f as usize) < sc.flows.len())
            .and_then(|(f, m)| self.tag(names, sc, f, m))
            .unwrap_or_default();
        let name = |n: Option<usize>| n.map_or("", |n| names[n].as_str());
        let src = self.addr_node(self.net.src_of(data));
        let dst = self.addr_node(self.net.dst_of(data));
        self.line.clear();
        let _ = writeln!(
            self.line,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            self.run_id,
            now.0,
            csv_field(&names[row.node]),
            csv_field(name(row.peer)),
            row.layer,
            row.event,
            serial,
            csv_field(name(src)),
            csv_field(name(dst)),
            meta.kind,
            ids,
            data.len(),
            csv_field(&msg),
            row.outcome
        );
        self.ids = ids;
        self.out.write_all(self.line.as_bytes())
    }
}

/// Decode what can be read of the IP packet `data` into `ids`
/// (space-separated `key=value`) and return the application message header
/// (flow, message id) its payload carries, if any.
///
/// - TCP: `seq`, `ack`, `len`, and, when the payload starts with an MQTT
///   packet of the segment's kind, `pid` and `dup` (PUBLISH: also `qos`).
/// - UDP: CoAP (`type`, `mid`, `token`) or MQTT-SN (`msgid`, `dup`) by the
///   packet's kind.
/// - A fragment other than the first: `frag=<offset>` only.
pub fn describe(data: &[u8], meta: &PacketMeta, ids: &mut String) -> Option<(u32, u32)> {
    let (offset, proto, body) = crate::net::l3::datagram_part(data)?;
    if offset != 0 {
        let _ = write!(ids, "frag={offset}");
        return None;
    }
    if meta.retx {
        ids.push_str("retx ");
    }
    if proto == ip::PROTO_TCP {
        let hdr = body.get(..20)?;
        let seq = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
        let ack = u32::from_be_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]);
        let doff = usize::from(hdr[12] >> 4) * 4;
        let payload = body.get(doff..).unwrap_or(&[]);
        let _ = write!(ids, "seq={seq} ack={ack} len={}", payload.len());
        if let Some(name) = meta.kind.strip_prefix("mqtt_") {
            return describe_mqtt(payload, name, ids);
        }
        return None;
    }
    if proto != ip::PROTO_UDP {
        return None;
    }
    let payload = body.get(8..)?;
    if meta.kind.starts_with("coap_") {
        describe_coap(payload, ids);
    } else if let Some(name) = meta.kind.strip_prefix("mqttsn_") {
        describe_mqttsn(payload, name, ids);
    }
    if meta.app_bytes as usize >= crate::app::workload::APP_HEADER_LEN {
        let at = usize::from(meta.proto_bytes);
        return crate::app::workload::parse_payload(payload.get(at..)?);
    }
    None
}

/// MQTT 3.1.1 §2: the fixed header, then PUBLISH's topic and packet id or
/// an acknowledgement's packet id. Only when the first byte's type is the
/// segment's kind `name` (the segment starts at that packet's boundary).
fn describe_mqtt(p: &[u8], name: &str, ids: &mut String) -> Option<(u32, u32)> {
    let types = [
        "",
        "connect",
        "connack",
        "publish",
        "puback",
        "pubrec",
        "pubrel",
        "pubcomp",
        "subscribe",
        "suback",
        "unsubscribe",
        "unsuback",
        "pingreq",
        "pingresp",
        "disconnect",
    ];
    let b0 = *p.first()?;
    if types.get(usize::from(b0 >> 4)) != Some(&name) {
        return None;
    }
    // remaining length (§2.2.3), at most four bytes
    let mut i = 1;
    let mut rem = 0usize;
    let mut mult = 1usize;
    loop {
        let b = *p.get(i)?;
        rem += usize::from(b & 0x7f) * mult;
        mult *= 128;
        i += 1;
        if b & 0x80 == 0 || i > 4 {
            break;
        }
    }
    let u16_at = |k: usize| Some(u16::from_be_bytes([*p.get(k)?, *p.get(k + 1)?]));
    match name {
        "publish" => {
            let qos = (b0 >> 1) & 3;
            let tlen = usize::from(u16_at(i)?);
            let mut at = i + 2 + tlen;
            if qos > 0 {
                let _ = write!(ids, " pid={}", u16_at(at)?);
                at += 2;
            }
            let _ = write!(ids, " qos={qos} dup={}", (b0 >> 3) & 1);
            let end = (i + rem).min(p.len());
            crate::app::workload::parse_payload(p.get(at..end)?)
        }
        "puback" | "pubrec" | "pubrel" | "pubcomp" | "subscribe" | "suback" | "unsubscribe"
        | "unsuback" => {
            let _ = write!(ids, " pid={}", u16_at(i)?);
            None
        }
        _ => None,
    }
}

/// RFC 7252 §3: type, message ID and token.
fn describe_coap(p: &[u8], ids: &mut String) {
    let (Some(&b0), Some(mid)) = (p.first(), p.get(2..4)) else {
        return;
    };
    let ty = ["CON", "NON", "ACK", "RST"][usize::from((b0 >> 4) & 3)];
    let _ = write!(
        ids,
        "type={ty} mid={}",
        u16::from_be_bytes([mid[0], mid[1]])
    );
    let tkl = usize::from(b0 & 0x0f);
    if let Some(tok) = p.get(4..4 + tkl) {
        ids.push_str(" token=");
        for b in tok {
            let _ = write!(ids, "{b:02x}");
        }
    }
}

/// MQTT-SN 1.2 §5.2: the length (1 or 3 bytes), MsgType, then the MsgId
/// of PUBLISH (after flags and topic id: DUP is flags' top bit), PUBACK
/// (after the topic id), PUBREC / PUBREL / PUBCOMP (first).
fn describe_mqttsn(p: &[u8], name: &str, ids: &mut String) {
    let body = match p.first() {
        Some(1) => p.get(4..),
        Some(_) => p.get(2..),
        None => None,
    };
    let Some(b) = body else {
        return;
    };
    let u16_at = |k: usize| b.get(k..k + 2).map(|x| u16::from_be_bytes([x[0], x[1]]));
    let (msgid, dup) = match name {
        "publish" => (u16_at(3), b.first().map(|f| f >> 7)),
        "puback" => (u16_at(2), None),
        "pubrec" | "pubrel" | "pubcomp" => (u16_at(0), None),
        _ => (None, None),
    };
    if let Some(m) = msgid {
        let _ = write!(ids, "msgid={m}");
    }
    if let Some(d) = dup {
        let _ = write!(ids, " dup={d}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_publish_ids_and_message() {
        // PUBLISH QoS 2 DUP, topic "t", pid 7, payload = app header
        let mut app = Vec::new();
        crate::app::workload::build_payload(&mut app, 1, 42, 0.0, 8);
        let mut p = vec![0x3c, (2 + 1 + 2 + app.len()) as u8, 0, 1, b't', 0, 7];
        p.extend_from_slice(&app);
        let mut ids = String::new();
        assert_eq!(describe_mqtt(&p, "publish", &mut ids), Some((1, 42)));
        assert_eq!(ids, " pid=7 qos=2 dup=1");
        ids.clear();
        assert_eq!(describe_mqtt(&p, "pubrel", &mut ids), None, "not its kind");
        assert_eq!(ids, "");
        describe_mqtt(&[0x62, 2, 0, 9], "pubrel", &mut ids);
        assert_eq!(ids, " pid=9");
    }

    #[test]
    fn coap_and_mqttsn_ids() {
        let mut ids = String::new();
        describe_coap(&[0x41, 0x03, 0x12, 0x34, 0xab], &mut ids);
        assert_eq!(ids, "type=CON mid=4660 token=ab");
        ids.clear();
        // length 7, PUBLISH (0x0c), flags DUP|QoS1, topic 1, msgid 5
        describe_mqttsn(&[7, 0x0c, 0xa0, 0, 1, 0, 5], "publish", &mut ids);
        assert_eq!(ids, "msgid=5 dup=1");
        ids.clear();
        describe_mqttsn(&[4, 0x10, 0, 3], "pubrel", &mut ids);
        assert_eq!(ids, "msgid=3");
    }
}
