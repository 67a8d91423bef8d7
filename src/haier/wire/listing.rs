//! The purchasable-products listing decoded as it arrives: the envelope is read key by key and
//! each item of `data` is decoded on its own and handed on at once, so no whole body and no
//! JSON tree of the listing is ever held. The envelope rules are `envelope.rs`'s and the items
//! are read as leniently as `reply::products_from` reads them.

use super::super::types::Product;
use super::lenient::{to_bool, to_text};
use super::reply::{product_of, ProductWire};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;
use std::io::Read;

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

/// Where decoded products go. An `Err` stops the decoding with that message (the receiver is
/// gone).
pub(crate) type Emit<'a> = dyn FnMut(Product) -> Result<(), String> + 'a;

/// Decodes a listing reply from `reader`, handing each product to `emit` as soon as it is read.
/// Products are handed on only once the envelope says `success:true`: when `data` comes before
/// `success` (Haier sends `success` first) they are held until the verdict. A malformed item
/// (not an object) is an error naming its index, as is a reply that is not JSON, not the
/// envelope, or whose `data` is not a list; products handed on before such an error stay handed.
pub(crate) fn decode_listing<R: Read>(reader: R, emit: &mut Emit<'_>) -> Result<ListingEnd, String> {
    let mut sink = Sink {
        emit,
        products: 0,
        item: None,
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let end = TopSeed { sink: &mut sink }
        .deserialize(&mut de)
        .and_then(|end| de.end().map(|()| end));
    end.map_err(|e| describe(&e, sink.item))
}

/// The message of a decoding error: syntax errors say the reply is not JSON (and at which item).
fn describe(e: &serde_json::Error, item: Option<u64>) -> String {
    match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => match item {
            Some(index) => format!("the reply is not JSON (in item {index} of the listing): {e}"),
            None => format!("the reply is not JSON: {e}"),
        },
        serde_json::error::Category::Io => format!("the reply could not be read: {e}"),
        serde_json::error::Category::Data => match item {
            Some(index) => format!("item {index} of the listing is not a product: {e}"),
            None => e.to_string(),
        },
    }
}

struct Sink<'s, 'e> {
    emit: &'s mut Emit<'e>,
    products: u64,
    /// The index of the item being read, for errors.
    item: Option<u64>,
}

/// Why a reply that is JSON is still not an answer (as `envelope.rs` says it).
const NOT_AN_ENVELOPE: &str = "the reply is neither Haier's envelope (no `success`) nor a list";

struct TopSeed<'a, 's, 'e> {
    sink: &'a mut Sink<'s, 'e>,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_, '_, '_> {
    type Value = ListingEnd;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ListingEnd, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, '_, '_> {
    type Value = ListingEnd;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("Haier's envelope or a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ListingEnd, A::Error> {
        // A bare list is the payload itself.
        let mut handing = Handing::Emit;
        items(self.sink, &mut handing, seq)?;
        Ok(ListingEnd::Done {
            products: self.sink.products,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ListingEnd, A::Error> {
        let mut success: Option<bool> = None;
        let mut fields: Vec<(String, Value)> = Vec::new();
        // Products read before the verdict, when `data` came first.
        let mut held: Option<Vec<Product>> = None;
        let mut seen_data = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "success" => {
                    let given = map.next_value::<Value>()?;
                    success = Some(to_bool(&given).ok_or_else(|| {
                        de::Error::custom(format!("`success` is neither true nor false: {given}"))
                    })?);
                }
                "errCode" | "code" | "errorMsg" | "message" | "msg" | "error" => {
                    let value = map.next_value::<Value>()?;
                    fields.push((key, value));
                }
                "data" if !seen_data => {
                    seen_data = true;
                    let refused_already =
                        success == Some(false) || (success.is_none() && err_code(&fields).is_some());
                    if refused_already {
                        map.next_value::<IgnoredAny>()?;
                    } else {
                        let mut handing = if success == Some(true) {
                            Handing::Emit
                        } else {
                            Handing::Hold(Vec::new())
                        };
                        map.next_value_seed(DataSeed {
                            sink: self.sink,
                            handing: &mut handing,
                        })?;
                        if let Handing::Hold(products) = handing {
                            held = Some(products);
                        }
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
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
            None => return Err(de::Error::custom(NOT_AN_ENVELOPE)),
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
        for product in held.into_iter().flatten() {
            (self.sink.emit)(product).map_err(de::Error::custom)?;
        }
        Ok(ListingEnd::Done {
            products: self.sink.products,
        })
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<ListingEnd, E> {
        Err(E::custom(NOT_AN_ENVELOPE))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<ListingEnd, E> {
        Err(E::custom(NOT_AN_ENVELOPE))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<ListingEnd, E> {
        Err(E::custom(NOT_AN_ENVELOPE))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<ListingEnd, E> {
        Err(E::custom(NOT_AN_ENVELOPE))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<ListingEnd, E> {
        Err(E::custom(NOT_AN_ENVELOPE))
    }

    fn visit_unit<E: de::Error>(self) -> Result<ListingEnd, E> {
        Err(E::custom(NOT_AN_ENVELOPE))
    }
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

/// Whether products go on at once or wait for the envelope's verdict.
enum Handing {
    Emit,
    Hold(Vec<Product>),
}

/// `data`: a list of items; null is empty, a single object a list of one.
struct DataSeed<'a, 'b, 's, 'e> {
    sink: &'a mut Sink<'s, 'e>,
    handing: &'b mut Handing,
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_, '_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_, '_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of products")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        items(self.sink, self.handing, seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.sink.item = Some(0);
        let wire = ProductWire::deserialize(de::value::MapAccessDeserializer::new(map))?;
        self.sink.item = None;
        hand_on(self.sink, self.handing, wire)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        Err(not_a_list(Value::from(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        Err(not_a_list(Value::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        Err(not_a_list(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        Err(not_a_list(Value::from(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        Err(not_a_list(Value::from(v)))
    }
}

fn not_a_list<E: de::Error>(value: Value) -> E {
    E::custom(format!("expected a list, got {value}"))
}

/// Reads the items of a list one at a time, handing each product on.
fn items<'de, A: SeqAccess<'de>>(
    sink: &mut Sink<'_, '_>,
    handing: &mut Handing,
    mut seq: A,
) -> Result<(), A::Error> {
    let mut index = 0u64;
    loop {
        sink.item = Some(index);
        match seq.next_element::<ProductWire>()? {
            None => break,
            Some(wire) => hand_on(sink, handing, wire)?,
        }
        index += 1;
    }
    sink.item = None;
    Ok(())
}

fn hand_on<E: de::Error>(sink: &mut Sink<'_, '_>, handing: &mut Handing, wire: ProductWire) -> Result<(), E> {
    let Some(product) = product_of(wire) else {
        return Ok(());
    };
    sink.products += 1;
    match handing {
        Handing::Emit => (sink.emit)(product).map_err(E::custom),
        Handing::Hold(held) => {
            held.push(product);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::envelope::{open_envelope, Envelope};
    use super::super::reply::products_from;
    use super::*;
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
        let end = decode_listing(reader, &mut |p| {
            got.push(p);
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
        let end = decode_listing(body.as_bytes(), &mut |_| Err("gone".to_owned()));
        assert!(end.unwrap_err().contains("gone"));
    }
}
