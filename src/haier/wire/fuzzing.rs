//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, off in every normal build):
//! each reads a whole reply body the way the client does.

use super::*;

/// Opens `body` as a business reply and, when it holds data, runs every payload decoder on it.
pub fn decode_reply(body: &[u8]) {
    if let Ok(Envelope::Data(data)) = open_envelope(body) {
        let _ = products_from(data.clone());
        let _ = prices_from(data.clone());
        if let Ok(level) = stock_from("P", "110101", data.clone()) {
            let _ = (level.total(), level.shown_warehouse());
        }
        let _ = balances_from(data.clone());
        let _ = logistics_from("SO.1", data.clone());
        let _ = cancel_accepted_from(&data);
        let _ = accepted_from(&data);
        let _ = delivery_photos_from("SO.1", data.clone());
        let _ = shipments_from(data);
    }
}

/// Reads `body` as a token reply and as a login refusal.
pub fn decode_token(body: &[u8], now_unix_secs: i64) {
    let _ = decode_token_reply(body, now_unix_secs);
    let _ = auth_error_message(body);
}
