//! Transport layer. UDP datagrams are built in `net::udp`; TCP lives in
//! `tcp` (issue #5; the connection state machine is still to come — so far
//! the segment wire format and the retransmission-timer estimator).
pub mod tcp;
