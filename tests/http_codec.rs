//! Properties of the HTTP/1.1 framing (`proto::http`): arbitrary bytes
//! never panic the parser (requests or responses, whole or split), and
//! every request and response the encoders write parses back to the same
//! body, wherever the stream is split.

use proptest::prelude::*;
use qossim::proto::http::{encode_post, encode_response, parse, Parser, Side, Start};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600), cut in 0usize..600) {
        for side in [Side::Requests, Side::Responses] {
            let _ = parse(side, &data);
            let mut p = Parser::new(side);
            let cut = cut.min(data.len());
            p.feed(&data[..cut]);
            while let Ok(Some(_)) = p.next_message() {}
            p.feed(&data[cut..]);
            while let Ok(Some(_)) = p.next_message() {}
        }
    }

    #[test]
    fn encoded_messages_parse_back_however_split(
        bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..5),
        close in any::<bool>(),
        cut in 0usize..2000,
    ) {
        let mut wire = Vec::new();
        for b in &bodies {
            encode_post(&mut wire, "collector", "/plant/t", "application/octet-stream", b, close);
        }
        let mut p = Parser::new(Side::Requests);
        let cut = cut.min(wire.len());
        let mut got = Vec::new();
        p.feed(&wire[..cut]);
        while let Some(m) = p.next_message().unwrap() {
            got.push(m);
        }
        p.feed(&wire[cut..]);
        while let Some(m) = p.next_message().unwrap() {
            got.push(m);
        }
        prop_assert_eq!(got.len(), bodies.len());
        for (m, b) in got.iter().zip(&bodies) {
            prop_assert_eq!(&m.body, b);
            prop_assert_eq!(m.keep_alive(), !close);
            let is_post = matches!(&m.start, Start::Request { method, .. } if method == "POST");
            prop_assert!(is_post);
        }
        prop_assert_eq!(p.buffered(), 0);
        // responses likewise
        let mut r = Vec::new();
        for b in &bodies {
            encode_response(&mut r, 200, b, false);
            encode_response(&mut r, 204, b"", false);
        }
        let mut p = Parser::new(Side::Responses);
        p.feed(&r);
        let mut n = 0;
        while let Some(m) = p.next_message().unwrap() {
            if n % 2 == 0 {
                prop_assert_eq!(&m.body, &bodies[n / 2]);
            } else {
                prop_assert!(m.body.is_empty());
            }
            n += 1;
        }
        prop_assert_eq!(n, 2 * bodies.len());
    }
}
