//! TCP: segment wire format (`segment`), NewReno congestion control
//! (`congestion`) and the RFC 6298 / Linux-like
//! retransmission-timeout estimator (`rto`). Read first: RFC 9293 (TCP),
//! RFC 7323 (window scale, timestamps), RFC 2018 (SACK), RFC 6298 (RTO).
pub mod congestion;
pub mod recv_buffer;
pub mod rto;
pub mod segment;
