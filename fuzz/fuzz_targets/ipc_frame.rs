#![no_main]
//! Hostile bytes through the control protocol's frame decoder and message
//! parsers: never a panic, never a frame above the limit, and every
//! message that parses encodes back to a frame that decodes to it.

use chantry_core::ipc::{
    ClientHello, FrameDecoder, MAX_FRAME, RequestFrame, ServerMessage, decode_message,
    encode_message,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The stream in two pieces, cut where the first byte says.
    let cut = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
    let mut d = FrameDecoder::new(4096);
    for piece in [&data[..cut], &data[cut..]] {
        d.extend(piece);
        loop {
            match d.next_frame() {
                Ok(Some(frame)) => {
                    assert!(!frame.is_empty() && frame.len() <= 4096);
                    check(&frame);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = d.finish();
    check(data);
});

/// Encodes `$msg`, decodes the frame as `$t`, and compares.
macro_rules! roundtrip {
    ($t:ty, $msg:expr) => {{
        let frame = encode_message($msg).expect("a parsed message encodes");
        assert!(frame.len() <= MAX_FRAME + 4);
        let mut d = FrameDecoder::default();
        d.extend(&frame);
        let payload = d.next_frame().expect("valid").expect("whole");
        assert_eq!(&decode_message::<$t>(&payload).expect("parses"), $msg);
    }};
}

fn check(payload: &[u8]) {
    if let Ok(r) = decode_message::<RequestFrame>(payload) {
        let _ = r.request.needs();
        roundtrip!(RequestFrame, &r);
    }
    if let Ok(h) = decode_message::<ClientHello>(payload) {
        roundtrip!(ClientHello, &h);
    }
    if let Ok(m) = decode_message::<ServerMessage>(payload) {
        roundtrip!(ServerMessage, &m);
    }
}
