//! The purchasable-products listing decoded as it arrives. A small scanner finds where each
//! JSON value of the reply ends (by its quotes and brackets) without decoding it: the
//! envelope's few fields are then decoded by `envelope.rs`'s rules, and each item of `data` is
//! cut out as its raw bytes, hashed ([`raw_hash`]) and decoded, as leniently as
//! `reply::products_from` reads it, only when its hash is not one the receiver already holds.
//! No whole body and no JSON tree of the listing is ever held: only the item being read.

use super::super::types::{KnownItems, ListedItem, RawHash};
use super::lenient::{to_bool, to_text};
use super::reply::{product_of, ProductWire};
use serde::de::IgnoredAny;
use serde_json::Value;
use std::io::Read;

/// The version of how an item's bytes become a product, the seed of [`raw_hash`]. Raise it
/// whenever `ProductWire` or `product_of` reads an item differently: stored raw hashes then
/// match nothing, and every item is decoded (and its hash stored) again once.
const ITEM_DECODING_VERSION: u64 = 1;

/// The hash of one item's raw bytes (as sent, from its first to its last byte).
pub(crate) fn raw_hash(item: &[u8]) -> RawHash {
    RawHash(xxhash_rust::xxh3::xxh3_128_with_seed(item, ITEM_DECODING_VERSION))
}

/// How a listing reply ended, once read to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListingEnd {
    /// `success:true` (or a bare list): every product was handed on; how many.
    Done { products: u64 },
    /// `success:false`: Haier's error code and message. No product was handed on.
    Refused { code: String, message: String },
    /// `success:false, code:429` on a 200: treat as a 429. No product was handed on.
    Throttled,
}

/// Where listed items go. An `Err` stops the decoding with that message (the receiver is gone).
pub(crate) type Emit<'a> = dyn FnMut(ListedItem) -> Result<(), String> + 'a;

/// Decodes a listing reply from `reader`, handing each item to `emit` as soon as it is read: as
/// [`ListedItem::Known`] when the hash of its bytes is in `known`, else decoded. Items are
/// handed on only once the envelope says `success:true`: when `data` comes before `success`
/// (Haier sends `success` first) they are held until the verdict. A malformed item is an error
/// naming its index, as is a reply that is not JSON, not the envelope, or whose `data` is not a
/// list; items handed on before such an error stay handed.
pub(crate) fn decode_listing<R: Read>(
    reader: R,
    known: &KnownItems,
    emit: &mut Emit<'_>,
) -> Result<ListingEnd, String> {
    let mut scan = Scanner::new(reader);
    let mut items = Items {
        known,
        emit,
        products: 0,
    };
    let end = match scan.peek().map_err(|e| e.describe(None))? {
        Some(b'[') => {
            // A bare list is the payload itself.
            items.read_list(&mut scan, &mut Handing::Emit)?;
            ListingEnd::Done {
                products: items.products,
            }
        }
        Some(b'{') => envelope(&mut scan, &mut items)?,
        Some(_) => {
            let value = scan.value().map_err(|e| e.describe(None))?;
            return Err(match serde_json::from_slice::<IgnoredAny>(value) {
                Ok(_) => NOT_AN_ENVELOPE.to_owned(),
                Err(e) => format!("the reply is not JSON: {e}"),
            });
        }
        None => return Err(Scan::Eof.describe(None)),
    };
    match scan.peek().map_err(|e| e.describe(None))? {
        None => Ok(end),
        Some(_) => Err(Scan::Bad("trailing characters after the reply").describe(None)),
    }
}

/// Why a reply that is JSON is still not an answer (as `envelope.rs` says it).
const NOT_AN_ENVELOPE: &str = "the reply is neither Haier's envelope (no `success`) nor a list";

/// The envelope (`{` next): its fields read one by one, `data`'s items handed on as they come.
fn envelope<R: Read>(scan: &mut Scanner<R>, items: &mut Items<'_, '_>) -> Result<ListingEnd, String> {
    let bad = |e: Scan| e.describe(None);
    let json = |e: serde_json::Error| format!("the reply is not JSON: {e}");
    let mut success: Option<bool> = None;
    let mut fields: Vec<(String, Value)> = Vec::new();
    // Items read before the verdict, when `data` came first.
    let mut held: Option<Vec<ListedItem>> = None;
    let mut seen_data = false;
    scan.advance(1);
    if scan.peek().map_err(bad)? == Some(b'}') {
        scan.advance(1);
    } else {
        loop {
            if scan.peek().map_err(bad)? != Some(b'"') {
                return Err(bad(Scan::Bad("expected a key")));
            }
            let key: String = serde_json::from_slice(scan.value().map_err(bad)?).map_err(json)?;
            scan.expect(b':', "expected `:`").map_err(bad)?;
            scan.peek().map_err(bad)?;
            match key.as_str() {
                "success" => {
                    let given: Value = serde_json::from_slice(scan.value().map_err(bad)?).map_err(json)?;
                    success = Some(
                        to_bool(&given)
                            .ok_or_else(|| format!("`success` is neither true nor false: {given}"))?,
                    );
                }
                "errCode" | "code" | "errorMsg" | "message" | "msg" | "error" => {
                    let value: Value = serde_json::from_slice(scan.value().map_err(bad)?).map_err(json)?;
                    fields.push((key, value));
                }
                "data" if !seen_data => {
                    seen_data = true;
                    let refused_already =
                        success == Some(false) || (success.is_none() && err_code(&fields).is_some());
                    if refused_already {
                        scan.value().map_err(bad)?;
                    } else {
                        let mut handing = if success == Some(true) {
                            Handing::Emit
                        } else {
                            Handing::Hold(Vec::new())
                        };
                        items.read_data(scan, &mut handing)?;
                        if let Handing::Hold(listed) = handing {
                            held = Some(listed);
                        }
                    }
                }
                _ => {
                    serde_json::from_slice::<IgnoredAny>(scan.value().map_err(bad)?).map_err(json)?;
                }
            }
            match scan.peek().map_err(bad)? {
                Some(b',') => {
                    scan.advance(1);
                    scan.peek().map_err(bad)?;
                }
                Some(b'}') => {
                    scan.advance(1);
                    break;
                }
                Some(_) => return Err(bad(Scan::Bad("expected `,` or `}`"))),
                None => return Err(bad(Scan::Eof)),
            }
        }
    }
    let field = |name: &str| {
        fields
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| to_text(v))
    };
    let err_code = err_code(&fields);
    let refused = match success {
        Some(success) => !success,
        None if err_code.is_some() => true,
        None => return Err(NOT_AN_ENVELOPE.to_owned()),
    };
    if refused {
        let code_field = field("code");
        if err_code.is_none() && code_field.as_deref() == Some("429") {
            return Ok(ListingEnd::Throttled);
        }
        let code = err_code.or(code_field).unwrap_or_else(|| "UNKNOWN".to_owned());
        let message = ["errorMsg", "message", "msg", "error"]
            .iter()
            .find_map(|k| field(k).filter(|m| !m.is_empty()))
            .unwrap_or_default();
        return Ok(ListingEnd::Refused { code, message });
    }
    for listed in held.into_iter().flatten() {
        (items.emit)(listed)?;
    }
    Ok(ListingEnd::Done {
        products: items.products,
    })
}

/// The non-empty `errCode` of the envelope, if any.
fn err_code(fields: &[(String, Value)]) -> Option<String> {
    fields
        .iter()
        .rev()
        .find(|(k, _)| k == "errCode")
        .and_then(|(_, v)| to_text(v))
        .filter(|c| !c.is_empty())
}

/// Whether items go on at once or wait for the envelope's verdict.
enum Handing {
    Emit,
    Hold(Vec<ListedItem>),
}

/// Where the items go, and how many products were handed on.
struct Items<'k, 'e> {
    known: &'k KnownItems,
    emit: &'k mut Emit<'e>,
    products: u64,
}

impl Items<'_, '_> {
    /// `data` (its first byte next): a list of items; null is empty, a single object a list of
    /// one.
    fn read_data<R: Read>(&mut self, scan: &mut Scanner<R>, handing: &mut Handing) -> Result<(), String> {
        match scan.peek().map_err(|e| e.describe(None))? {
            Some(b'[') => self.read_list(scan, handing),
            Some(b'{') => {
                let item = scan.value().map_err(|e| e.describe(Some(0)))?;
                self.hand_on(item, 0, handing)
            }
            _ => {
                let value = scan.value().map_err(|e| e.describe(None))?;
                match serde_json::from_slice::<Value>(value) {
                    Ok(Value::Null) => Ok(()),
                    Ok(value) => Err(format!("expected a list, got {value}")),
                    Err(e) => Err(format!("the reply is not JSON: {e}")),
                }
            }
        }
    }

    /// A list (`[` next), read one item at a time, each handed on as it is read.
    fn read_list<R: Read>(&mut self, scan: &mut Scanner<R>, handing: &mut Handing) -> Result<(), String> {
        scan.advance(1);
        let mut index = 0u64;
        if scan.peek().map_err(|e| e.describe(Some(index)))? == Some(b']') {
            scan.advance(1);
            return Ok(());
        }
        loop {
            let item = scan.value().map_err(|e| e.describe(Some(index)))?;
            self.hand_on(item, index, handing)?;
            index += 1;
            match scan.peek().map_err(|e| e.describe(Some(index)))? {
                Some(b',') => {
                    scan.advance(1);
                    scan.peek().map_err(|e| e.describe(Some(index)))?;
                }
                Some(b']') => {
                    scan.advance(1);
                    return Ok(());
                }
                Some(_) => return Err(Scan::Bad("expected `,` or `]`").describe(Some(index))),
                None => return Err(Scan::Eof.describe(Some(index))),
            }
        }
    }

    /// One item's raw bytes: handed on as known when their hash is, else decoded (an item
    /// without a product code is dropped).
    fn hand_on(&mut self, item: &[u8], index: u64, handing: &mut Handing) -> Result<(), String> {
        let hash = raw_hash(item);
        let listed = match self.known.get(&hash) {
            Some(&known) => ListedItem::Known(known),
            None => {
                let wire: ProductWire = serde_json::from_slice(item).map_err(|e| match e.classify() {
                    serde_json::error::Category::Data => {
                        format!("item {index} of the listing is not a product: {e}")
                    }
                    _ => format!("the reply is not JSON (in item {index} of the listing): {e}"),
                })?;
                let Some(product) = product_of(wire) else {
                    return Ok(());
                };
                ListedItem::Product {
                    product,
                    raw_hash: hash,
                }
            }
        };
        self.products += 1;
        match handing {
            Handing::Emit => (self.emit)(listed),
            Handing::Hold(held) => {
                held.push(listed);
                Ok(())
            }
        }
    }
}

/// Bytes read from the reply at a time.
const READ_BYTES: usize = 64 * 1024;

/// Why the scanner stopped.
#[derive(Debug)]
enum Scan {
    /// The reply ended inside a value.
    Eof,
    /// A byte that cannot be there.
    Bad(&'static str),
    /// The reply could not be read.
    Io(String),
}

impl Scan {
    /// The message of a decoding error (at `item` of the listing, when in one).
    fn describe(self, item: Option<u64>) -> String {
        let what = match self {
            Scan::Io(message) => return format!("the reply could not be read: {message}"),
            Scan::Eof => "EOF while parsing a value",
            Scan::Bad(what) => what,
        };
        match item {
            Some(index) => format!("the reply is not JSON (in item {index} of the listing): {what}"),
            None => format!("the reply is not JSON: {what}"),
        }
    }
}

/// The reply's bytes, read as needed, with a cursor: finds where a value ends without
/// decoding it. Only the value being read is kept (and what one read brought after it).
struct Scanner<R> {
    reader: R,
    buf: Vec<u8>,
    /// The next unread byte of `buf`; every offset the scanner takes is from here.
    pos: usize,
    eof: bool,
}

impl<R: Read> Scanner<R> {
    fn new(reader: R) -> Self {
        Scanner {
            reader,
            buf: Vec::with_capacity(2 * READ_BYTES),
            pos: 0,
            eof: false,
        }
    }

    /// Reads more of the reply after what is buffered, dropping what was read already; false
    /// at its end.
    fn fill(&mut self) -> Result<bool, Scan> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + READ_BYTES, 0);
        loop {
            match self.reader.read(&mut self.buf[len..]) {
                Ok(n) => {
                    self.buf.truncate(len + n);
                    self.eof = n == 0;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(Scan::Io(e.to_string()));
                }
            }
        }
    }

    /// Whether `at` bytes past the cursor is buffered, after reading more if needed.
    fn has(&mut self, at: usize) -> Result<bool, Scan> {
        while self.pos + at >= self.buf.len() {
            if !self.fill()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Skips whitespace and returns the next byte, not taken; `None` at the reply's end.
    fn peek(&mut self) -> Result<Option<u8>, Scan> {
        loop {
            if !self.has(0)? {
                return Ok(None);
            }
            match self.buf[self.pos] {
                b' ' | b'\n' | b'\r' | b'\t' => self.pos += 1,
                b => return Ok(Some(b)),
            }
        }
    }

    fn advance(&mut self, n: usize) {
        self.pos += n;
    }

    /// Takes `byte` (after whitespace).
    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), Scan> {
        match self.peek()? {
            Some(b) if b == byte => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(Scan::Bad(what)),
            None => Err(Scan::Eof),
        }
    }

    /// Takes the value at the cursor (whitespace skipped before): its bytes, found by its
    /// quotes and brackets, not checked.
    fn value(&mut self) -> Result<&[u8], Scan> {
        let first = self.peek()?.ok_or(Scan::Eof)?;
        let len = match first {
            b'{' | b'[' => self.nested_len()?,
            b'"' => self.string_end(1)?,
            b',' | b':' | b'}' | b']' => return Err(Scan::Bad("expected a value")),
            _ => self.scalar_len()?,
        };
        let start = self.pos;
        self.pos += len;
        Ok(&self.buf[start..start + len])
    }

    /// The end (past its closing quote) of the string whose content starts `at` bytes past
    /// the cursor.
    fn string_end(&mut self, mut at: usize) -> Result<usize, Scan> {
        loop {
            if !self.has(at)? {
                return Err(Scan::Eof);
            }
            let rest = &self.buf[self.pos + at..];
            match memchr::memchr2(b'"', b'\\', rest) {
                Some(i) if rest[i] == b'"' => return Ok(at + i + 1),
                // An escape: the next byte is taken with it.
                Some(i) => at += i + 2,
                None => at += rest.len(),
            }
        }
    }

    /// The length of the object or list at the cursor.
    fn nested_len(&mut self) -> Result<usize, Scan> {
        let mut depth = 0usize;
        let mut at = 0;
        loop {
            if !self.has(at)? {
                return Err(Scan::Eof);
            }
            match self.buf[self.pos + at] {
                b'"' => {
                    at = self.string_end(at + 1)?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Ok(at + 1);
                    }
                }
                _ => {}
            }
            at += 1;
        }
    }

    /// The length of the number, `true`, `false` or `null` at the cursor (or of whatever
    /// else stands there, up to the next separator, for the decoder to refuse).
    fn scalar_len(&mut self) -> Result<usize, Scan> {
        let mut at = 0;
        while self.has(at)? {
            match self.buf[self.pos + at] {
                b',' | b':' | b'}' | b']' | b'{' | b'[' | b'"' | b' ' | b'\n' | b'\r' | b'\t' => break,
                _ => at += 1,
            }
        }
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::super::envelope::{open_envelope, Envelope};
    use super::super::reply::products_from;
    use super::*;
    use crate::haier::types::Product;
    use serde_json::json;

    /// A reader that returns the body in the given pieces, one `read` each at most.
    struct Pieces {
        pieces: Vec<Vec<u8>>,
        at: usize,
        offset: usize,
    }

    impl Read for Pieces {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            while self.at < self.pieces.len() && self.offset == self.pieces[self.at].len() {
                self.at += 1;
                self.offset = 0;
            }
            let Some(piece) = self.pieces.get(self.at) else {
                return Ok(0);
            };
            let n = buf.len().min(piece.len() - self.offset);
            buf[..n].copy_from_slice(&piece[self.offset..self.offset + n]);
            self.offset += n;
            Ok(n)
        }
    }

    fn split_at(body: &[u8], cuts: &[usize]) -> Pieces {
        let mut pieces = Vec::new();
        let mut from = 0;
        for &cut in cuts {
            pieces.push(body[from..cut].to_vec());
            from = cut;
        }
        pieces.push(body[from..].to_vec());
        Pieces {
            pieces,
            at: 0,
            offset: 0,
        }
    }

    fn decode(reader: impl Read) -> (Result<ListingEnd, String>, Vec<Product>) {
        let mut got = Vec::new();
        let end = decode_listing(reader, &KnownItems::new(), &mut |listed| {
            match listed {
                ListedItem::Product { product, .. } => got.push(product),
                ListedItem::Known(index) => panic!("nothing is known, yet item {index} was"),
            }
            Ok(())
        });
        (end, got)
    }

    fn sample() -> Value {
        json!({"success":true,"code":0,"errCode":null,"errorMsg":null,"infoMsgs":[],
            "data":[
                {"productCode":"GD0A3K9Z1","productModel":"EC6002-MC3","productGroupNamd":"电热水器",
                 "productBrandName":"海尔","productImageUrl":"https://img/x.jpg",
                 "productLageUrls":"https://a/1.jpg, https://a/2.jpg","isSales":"1","noSalesReason":null},
                {"productCode":"","productModel":"dropped: no code"},
                {"productCode":12345,"productModel":null,"isSales":0,"noSalesReason":"产品未投放",
                 "productLageUrls":["u\"1","u\\2"],"extra":{"nested":[1,2,{"a":"}]"}]}},
                {"productCode":"BB0001","isSales":"true"}
            ],
            "extra":"after the data"})
    }

    #[test]
    fn the_listing_decodes_as_the_whole_body_does_wherever_the_chunks_split() {
        let body = sample().to_string().into_bytes();
        let Envelope::Data(data) = open_envelope(&body).unwrap() else {
            panic!("data")
        };
        let expected = products_from(data).unwrap();
        assert_eq!(expected.len(), 3);
        for cut in 0..=body.len() {
            let (end, got) = decode(split_at(&body, &[cut]));
            assert_eq!(end, Ok(ListingEnd::Done { products: 3 }), "cut at {cut}");
            assert_eq!(got, expected, "cut at {cut}");
        }
        let every_byte: Vec<usize> = (1..body.len()).collect();
        let (end, got) = decode(split_at(&body, &every_byte));
        assert_eq!(end, Ok(ListingEnd::Done { products: 3 }));
        assert_eq!(got, expected);
        // A bare list is the payload itself.
        let bare = sample()["data"].to_string().into_bytes();
        let (end, got) = decode(split_at(&bare, &[bare.len() / 2]));
        assert_eq!(end, Ok(ListingEnd::Done { products: 3 }));
        assert_eq!(got, expected);
    }

    #[test]
    fn a_malformed_item_is_reported_with_its_index_after_the_items_before_it() {
        // `success` first, as Haier sends it: the items are handed on as they are read.
        let body =
            r#"{"success":true,"data":[{"productCode":"A1"},{"productCode":"A2"},7,{"productCode":"A3"}]}"#;
        let (end, got) = decode(body.as_bytes());
        let message = end.unwrap_err();
        assert!(
            message.contains("item 2 of the listing is not a product"),
            "{message}"
        );
        assert_eq!(
            got.iter().map(|p| p.code.as_str()).collect::<Vec<_>>(),
            ["A1", "A2"]
        );
        // A body cut short inside an item names it too.
        let cut = &body.as_bytes()[..body.find("A2").unwrap()];
        let message = decode(cut).0.unwrap_err();
        assert!(
            message.contains("not JSON (in item 1 of the listing)"),
            "{message}"
        );
    }

    #[test]
    fn envelope_errors_refusals_and_throttles_hand_nothing_on() {
        let cases = [
            (
                json!({"success":false,"errCode":"PASSWORD_ERROR","errorMsg":"密码错误","data":[{"productCode":"A"}]}),
                Ok(ListingEnd::Refused {
                    code: "PASSWORD_ERROR".into(),
                    message: "密码错误".into(),
                }),
            ),
            // The verdict after the data: the data was held, then dropped.
            (
                json!({"data":[{"productCode":"A"}],"success":"false","code":"1","message":"no"}),
                Ok(ListingEnd::Refused {
                    code: "1".into(),
                    message: "no".into(),
                }),
            ),
            (
                json!({"success":false,"code":429,"errorMsg":"请求过于频繁"}),
                Ok(ListingEnd::Throttled),
            ),
            (
                json!({"errCode":"E1","data":[{"productCode":"A"}]}),
                Ok(ListingEnd::Refused {
                    code: "E1".into(),
                    message: String::new(),
                }),
            ),
        ];
        for (body, expected) in cases {
            let (end, got) = decode(body.to_string().as_bytes());
            assert_eq!(end, expected, "{body}");
            assert!(got.is_empty(), "{body}");
        }
        for broken in [
            json!({"a":1}),
            json!(true),
            json!(null),
            json!("ok"),
            json!(0),
            json!({}),
        ] {
            let (end, got) = decode(broken.to_string().as_bytes());
            let message = end.unwrap_err();
            assert!(message.contains(NOT_AN_ENVELOPE), "{broken}: {message}");
            assert!(got.is_empty());
        }
        let message = decode(&br#"{"success":"maybe","data":[]}"#[..]).0.unwrap_err();
        assert!(
            message.contains("`success` is neither true nor false"),
            "{message}"
        );
        let message = decode(&b"<html>502</html>"[..]).0.unwrap_err();
        assert!(message.starts_with("the reply is not JSON"), "{message}");
        let message = decode(&br#"{"success":true,"data":"ok"}"#[..]).0.unwrap_err();
        assert!(message.contains("expected a list, got \"ok\""), "{message}");
        let message = decode(&br#"{"success":true,"data":[]} trailing"#[..])
            .0
            .unwrap_err();
        assert!(message.starts_with("the reply is not JSON"), "{message}");
    }

    #[test]
    fn data_before_the_verdict_is_handed_on_once_it_is_success_and_null_or_one_object_is_read_leniently() {
        let (end, got) = decode(&br#"{"data":[{"productCode":"A"}],"success":true}"#[..]);
        assert_eq!(end, Ok(ListingEnd::Done { products: 1 }));
        assert_eq!(got[0].code, "A");
        let (end, got) = decode(&br#"{"success":true,"data":null}"#[..]);
        assert_eq!(end, Ok(ListingEnd::Done { products: 0 }));
        assert!(got.is_empty());
        let (end, got) = decode(&br#"{"success":true,"data":{"productCode":"ONE","isSales":"0"}}"#[..]);
        assert_eq!(end, Ok(ListingEnd::Done { products: 1 }));
        assert!(!got[0].is_sales);
        let (end, _) = decode(&br#"{"success":true}"#[..]);
        assert_eq!(end, Ok(ListingEnd::Done { products: 0 }));
    }

    #[test]
    fn a_receiver_that_is_gone_stops_the_decoding() {
        let body = sample().to_string();
        let end = decode_listing(body.as_bytes(), &KnownItems::new(), &mut |_| {
            Err("gone".to_owned())
        });
        assert!(end.unwrap_err().contains("gone"));
    }

    #[test]
    fn an_item_whose_raw_bytes_are_known_is_handed_on_undecoded_and_the_others_with_their_hash() {
        let a1: &[u8] = br#"{"productCode":"A1","productModel":"M1"}"#;
        let a2: &[u8] = br#"{"productCode":"A2","productModel":"M2"}"#;
        // The same product as A1, its bytes spelled otherwise: decoded.
        let a1_again: &[u8] = br#"{"productModel":"M1","productCode":"A1"}"#;
        let parts: [&[u8]; 7] = [
            br#"{"success":true,"data":[ "#,
            a1,
            b" ,\n ",
            a2,
            b",",
            a1_again,
            b"]}",
        ];
        let body = parts.concat();
        let known = KnownItems::from([(raw_hash(a1), 7)]);
        for cut in 0..=body.len() {
            let mut got = Vec::new();
            let end = decode_listing(split_at(&body, &[cut]), &known, &mut |listed| {
                got.push(listed);
                Ok(())
            });
            assert_eq!(end, Ok(ListingEnd::Done { products: 3 }), "cut at {cut}");
            assert_eq!(got[0], ListedItem::Known(7), "cut at {cut}");
            let ListedItem::Product {
                product,
                raw_hash: hash,
            } = &got[1]
            else {
                panic!("A2 is decoded")
            };
            assert_eq!((product.code.as_str(), *hash), ("A2", raw_hash(a2)));
            let ListedItem::Product {
                product,
                raw_hash: hash,
            } = &got[2]
            else {
                panic!("A1 spelled otherwise is decoded")
            };
            assert_eq!(product.code, "A1");
            assert_ne!(*hash, raw_hash(a1));
        }
        // A known item is not decoded: its bytes are not even looked at as a product.
        let odd: &[u8] = b"7";
        let parts: [&[u8]; 3] = [br#"{"success":true,"data":["#, odd, b"]}"];
        let body = parts.concat();
        let known = KnownItems::from([(raw_hash(odd), 1)]);
        let mut got = Vec::new();
        let end = decode_listing(&body[..], &known, &mut |listed| {
            got.push(listed);
            Ok(())
        });
        assert_eq!(end, Ok(ListingEnd::Done { products: 1 }));
        assert_eq!(got, [ListedItem::Known(1)]);
        let message = decode(&body[..]).0.unwrap_err();
        assert!(
            message.contains("item 0 of the listing is not a product"),
            "{message}"
        );
    }

    #[test]
    fn the_raw_hash_is_stable_across_builds() {
        // A fixed value (xxh3-128 is specified, not the build's): if this changes, every
        // stored item would be decoded again once.
        assert_eq!(
            raw_hash(br#"{"productCode":"A1"}"#).to_bytes(),
            [136, 209, 185, 210, 250, 20, 30, 97, 230, 9, 221, 13, 27, 16, 198, 198],
            "xxh3-128 of the item's bytes, seeded with the decoding version"
        );
    }
}
