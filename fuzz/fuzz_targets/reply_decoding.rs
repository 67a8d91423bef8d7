//! Any bytes as a Haier reply: the envelope, every payload decoder and the token decoders must
//! return, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    haier_sync::haier::fuzzing::decode_reply(body);
    haier_sync::haier::fuzzing::decode_token(body, 1_700_000_000);
});
