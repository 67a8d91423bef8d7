//! Hostile callbacks, as the internet sends them: a table of bad ones with the exact reply and
//! what is stored, what 1000 rejected 64 KB callbacks cost the database, the per-address limit
//! on rejected callbacks, their counts in `/metrics`, and a property test over arbitrary bodies.

use crate::support::*;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use haier_sync::db::{Db, DbConnection};
use haier_sync::orders::callback::{excerpt, REJECTED_STORED_BYTES};
use haier_sync::orders::events::OrderEvent;
use haier_sync::orders::notices::{METHOD_CANCEL, METHOD_CONFIRM};
use haier_sync::orders::{CallbackOutcome, OutboxStatus};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
const CONFIRM_SO1: &str =
    r#"{"ExtOrderNo":"SO.20261124.000001","PlatformOrderNo":"SO-1","State":1,"FailMsg":""}"#;

/// A reply as a client sees it.
struct Reply {
    status: u16,
    body: Value,
    retry_after: Option<String>,
}

/// Posts `body` over a plain HTTP/1.1 connection opened from `source` (any 127.x.y.z address
/// is this host), so that tests can send from many addresses and send bytes no client library
/// would (bad UTF-8, duplicate fields, no `Content-Type`).
async fn post_raw(to: SocketAddr, source: IpAddr, content_type: Option<&str>, body: &[u8]) -> Reply {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    let mut stream = socket.connect(to).await.unwrap();
    let mut head = format!(
        "POST /haier/callback HTTP/1.1\r\nHost: {to}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(content_type) = content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    // The receiver may answer (413) and close before it has read all of an oversized body.
    let _ = stream.write_all(&request).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response: {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let retry_after = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("retry-after: ")
                .or_else(|| l.strip_prefix("Retry-After: "))
        })
        .map(str::to_owned);
    Reply {
        status,
        body: serde_json::from_str(body).unwrap_or(Value::Null),
        retry_after,
    }
}

fn local(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn addr_of(receiver: &ReceiverHandle) -> SocketAddr {
    receiver.base_url.trim_start_matches("http://").parse().unwrap()
}

/// Form-encodes fields in the order given.
fn encode<K: AsRef<str>, V: AsRef<str>>(fields: &[(K, V)]) -> Vec<u8> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        form.append_pair(k.as_ref(), v.as_ref());
    }
    form.finish().into_bytes()
}

/// `fields` with a `Sign` made with the right secret appended, form-encoded.
fn signed_body(fields: &[(&str, &str)]) -> Vec<u8> {
    let sign = sim_sign(fields, SECRET);
    let mut all: Vec<(&str, &str)> = fields.to_vec();
    all.push(("Sign", &sign));
    encode(&all)
}

fn stamp(at: DateTime<Utc>) -> String {
    haier_sync::simulator::beijing_timestamp(at)
}

/// A signed callback with this method and data, form-encoded.
fn signed(method: &str, data: &str, now: DateTime<Utc>) -> Vec<u8> {
    encode(&signed_form(method, data, now, APP_KEY, SECRET))
}

/// An app with its receiver, on the shipped `[callback]` limits.
fn receiving() -> Options {
    Options::default().callbacks(Callbacks::InProcess)
}

/// An app whose limit on rejected callbacks does not come into play.
fn unlimited() -> Options {
    receiving().set("callback.rejected_burst", 1_000_000)
}

/// The database's size in bytes: SQLite's pages (WAL included), PostgreSQL's files.
async fn database_bytes(db: &Db) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Size {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        bytes: i64,
    }
    db.run(|conn| {
        use diesel::RunQueryDsl;
        let sql = match conn {
            DbConnection::Sqlite(_) => {
                "SELECT page_count * page_size AS bytes FROM pragma_page_count(), pragma_page_size()"
            }
            DbConnection::Pg(_) => "SELECT pg_database_size(current_database()) AS bytes",
        };
        Ok(diesel::sql_query(sql).get_result::<Size>(conn)?.bytes)
    })
    .await
    .unwrap()
}

/// `len` letters and digits that do not compress (xorshift: `rand` is slow in a debug build).
fn incompressible(seed: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(ALPHABET[(state % ALPHABET.len() as u64) as usize])
        })
        .collect()
}

/// What one event row stores as text.
fn stored_bytes(event: &OrderEvent) -> usize {
    event.raw.len()
        + event.detail.as_deref().map_or(0, str::len)
        + event.method.as_deref().map_or(0, str::len)
        + event.platform_order_no.as_deref().map_or(0, str::len)
}

async fn assert_order_untouched(db: &Db, what: &str) {
    let order = row(db, "SO-1").await;
    assert_eq!(order.status, OutboxStatus::Pending, "{what}");
    assert_eq!(order.haier_order_no, None, "{what}");
    assert_eq!(order.cancel_state, None, "{what}");
    assert_eq!(order.out_of_stock_at, None, "{what}");
}

enum Description {
    Is(String),
}

/// What a bad callback leaves in `haier_order_events`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stored {
    /// `rejected`, cut to an excerpt of at most `REJECTED_STORED_BYTES` in all (unsigned).
    Excerpt,
    /// `rejected`, whole: it was correctly signed, so the `Data` is kept as sent.
    Whole,
    /// `ignored`, whole (a signed callback with a method this receiver does not handle).
    Ignored,
}

struct Case {
    what: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    description: Description,
    stored: Stored,
}

fn case(
    what: &'static str,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    description: &str,
    stored: Stored,
) -> Case {
    Case {
        what,
        content_type: FORM,
        body,
        status,
        code,
        description: Description::Is(description.to_owned()),
        stored,
    }
}

/// At least 30 bad callbacks, each with the exact reply and what is stored.
fn bad_callbacks(now: DateTime<Utc>) -> Vec<Case> {
    use Stored::*;
    let ts = stamp(now);
    let ts = ts.as_str();
    let base = |data: &'static str| -> Vec<(&'static str, String)> {
        vec![
            ("AppKey", APP_KEY.to_owned()),
            ("TimeStamp", stamp(now)),
            ("Method", METHOD_CONFIRM.to_owned()),
            ("Data", data.to_owned()),
        ]
    };
    let with_sign = |mut fields: Vec<(&'static str, String)>, sign: &str| {
        fields.push(("Sign", sign.to_owned()));
        encode(&fields)
    };
    let good_sign = sim_sign(&base(CONFIRM_SO1), SECRET);
    let bad_sign = "Sign does not match the fields and the shared secret";
    let json_refused =
        "the body must be application/x-www-form-urlencoded with the fields AppKey, TimeStamp, \
                        Method, Data and Sign, not JSON";
    let confirm = |data: &str| signed(METHOD_CONFIRM, data, now);
    let long_key = "k".repeat(10_000);
    let junk = incompressible(7, 64_000);
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let mut cases = vec![
        case("an empty body", Vec::new(), 200, "missing_field", "AppKey is missing", Excerpt),
        case(
            "no Sign",
            encode(&base(CONFIRM_SO1)),
            200,
            "missing_field",
            "Sign is missing",
            Excerpt,
        ),
        case(
            "a blank Sign",
            with_sign(base(CONFIRM_SO1), "   "),
            200,
            "missing_field",
            "Sign is missing",
            Excerpt,
        ),
        case(
            "a Sign made with another secret",
            encode(&signed_form(METHOD_CONFIRM, CONFIRM_SO1, now, APP_KEY, "not-the-secret")),
            200,
            "bad_sign",
            bad_sign,
            Excerpt,
        ),
        case(
            "the Sign of another callback's Data",
            with_sign(
                base(r#"{"ExtOrderNo":"SO.X","PlatformOrderNo":"SO-1","State":1}"#),
                &good_sign,
            ),
            200,
            "bad_sign",
            bad_sign,
            Excerpt,
        ),
        case(
            "a Sign that is not hex",
            with_sign(base(CONFIRM_SO1), &"Z".repeat(32)),
            200,
            "bad_sign",
            bad_sign,
            Excerpt,
        ),
        case(
            "a Sign with its last digit changed",
            with_sign(
                base(CONFIRM_SO1),
                &format!(
                    "{}{}",
                    &good_sign[..31],
                    if good_sign.ends_with('0') { '1' } else { '0' }
                ),
            ),
            200,
            "bad_sign",
            bad_sign,
            Excerpt,
        ),
        case(
            "no AppKey",
            with_sign(base(CONFIRM_SO1)[1..].to_vec(), &good_sign),
            200,
            "missing_field",
            "AppKey is missing",
            Excerpt,
        ),
        case(
            "a blank AppKey",
            encode(&signed_form(METHOD_CONFIRM, CONFIRM_SO1, now, " ", SECRET)),
            200,
            "missing_field",
            "AppKey is missing",
            Excerpt,
        ),
        case(
            "another system's AppKey, signed with our secret",
            encode(&signed_form(METHOD_CONFIRM, CONFIRM_SO1, now, "other-app", SECRET)),
            200,
            "unknown_app_key",
            "AppKey other-app is not this receiver's",
            Excerpt,
        ),
        case(
            "an AppKey of 10 KB (the reply quotes 64 bytes of it)",
            encode(&signed_form(METHOD_CONFIRM, CONFIRM_SO1, now, &long_key, SECRET)),
            200,
            "unknown_app_key",
            &format!(
                "AppKey {}… [cut: 10000 bytes in all] is not this receiver's",
                "k".repeat(35)
            ),
            Excerpt,
        ),
        case(
            "bad UTF-8 in AppKey",
            b"AppKey=%FF%FE&TimeStamp=1&Method=m&Data=d&Sign=s".to_vec(),
            200,
            "unknown_app_key",
            "AppKey \u{FFFD}\u{FFFD} is not this receiver's",
            Excerpt,
        ),
        case(
            "bad UTF-8 in Data, signed over the bytes as sent",
            {
                // Signed by a sender that hashes the raw bytes; the receiver reads the form as
                // UTF-8 (bad bytes become U+FFFD), so the sign cannot match.
                let data = b"{\"PlatformOrderNo\":\"SO-1\",\"State\":1,\"ExtOrderNo\":\"\xFF\"}";
                let mut signed_over = b"demo-callback-secretappkeydemo-app-keydata".to_vec();
                signed_over.extend_from_slice(&data.to_ascii_lowercase());
                signed_over.extend_from_slice(b"methodhmm.scm_heorder.confirmtimestamp");
                signed_over.extend_from_slice(ts.as_bytes());
                signed_over.extend_from_slice(b"demo-callback-secret");
                use md5::Digest as _;
                let sign = hex::encode_upper(md5::Md5::digest(&signed_over));
                let mut body = format!("AppKey={APP_KEY}&TimeStamp={ts}&Method={METHOD_CONFIRM}&Data=").into_bytes();
                body.extend_from_slice(data);
                body.extend_from_slice(format!("&Sign={sign}").as_bytes());
                body
            },
            200,
            "bad_sign",
            bad_sign,
            Excerpt,
        ),
        case(
            "a binary body",
            (0..=255u8).cycle().take(4_096).collect(),
            200,
            "missing_field",
            "AppKey is missing",
            Excerpt,
        ),
        case(
            "64 KB of junk in Data with a made-up Sign",
            with_sign(
                vec![
                    ("AppKey", APP_KEY.to_owned()),
                    ("TimeStamp", stamp(now)),
                    ("Method", METHOD_CONFIRM.to_owned()),
                    ("Data", junk),
                ],
                "0123456789ABCDEF0123456789ABCDEF",
            ),
            200,
            "bad_sign",
            bad_sign,
            Excerpt,
        ),
        case(
            "AppKey given twice",
            encode(&[("AppKey", APP_KEY), ("AppKey", "other"), ("Sign", "x")]),
            200,
            "duplicate_field",
            "AppKey is given 2 times; each field may be given once",
            Excerpt,
        ),
        case(
            "AppKey and appkey",
            encode(&[("AppKey", APP_KEY), ("appkey", APP_KEY)]),
            200,
            "duplicate_field",
            "AppKey is given 2 times; each field may be given once",
            Excerpt,
        ),
        case(
            "two Data fields, both signed",
            {
                let mut fields = base(CONFIRM_SO1);
                fields.push((
                    "Data",
                    r#"{"ExtOrderNo":"SO.Y","PlatformOrderNo":"SO-1","State":1}"#.to_owned(),
                ));
                let sign = sim_sign(&fields, SECRET);
                with_sign(fields, &sign)
            },
            200,
            "duplicate_field",
            "Data is given 2 times; each field may be given once",
            Excerpt,
        ),
        case(
            "Sign given twice",
            {
                let mut fields = base(CONFIRM_SO1);
                fields.push(("Sign", good_sign.clone()));
                with_sign(fields, &good_sign)
            },
            200,
            "duplicate_field",
            "Sign is given 2 times; each field may be given once",
            Excerpt,
        ),
        // A TimeStamp is never a reason to refuse a signed callback (see
        // `signed_callbacks_with_any_time_stamp_are_applied_and_the_skew_recorded`), and it buys
        // an unsigned one nothing.
        case(
            "a TimeStamp of 2020 with a wrong Sign",
            with_sign(
                vec![
                    ("AppKey", APP_KEY.to_owned()),
                    ("TimeStamp", "20200101000000".to_owned()),
                    ("Method", METHOD_CONFIRM.to_owned()),
                    ("Data", CONFIRM_SO1.to_owned()),
                ],
                &good_sign,
            ),
            200,
            "bad_sign",
            bad_sign,
            Excerpt,
        ),
        case(
            "a TimeStamp with dashes and no Sign",
            encode(&[
                ("AppKey", APP_KEY),
                ("TimeStamp", "2026-12-01 10:00:00"),
                ("Method", METHOD_CONFIRM),
                ("Data", CONFIRM_SO1),
            ]),
            200,
            "missing_field",
            "Sign is missing",
            Excerpt,
        ),
        case(
            "no Method",
            signed_body(&[("AppKey", APP_KEY), ("TimeStamp", ts), ("Data", CONFIRM_SO1)]),
            200,
            "missing_field",
            "Method is missing",
            Whole,
        ),
        case(
            "a Method this receiver does not handle",
            signed("hmm.scm_heorder.bogus", CONFIRM_SO1, now),
            200,
            "unknown_method",
            "Method hmm.scm_heorder.bogus is not one this receiver handles",
            Ignored,
        ),
        case(
            "no Data",
            signed_body(&[("AppKey", APP_KEY), ("TimeStamp", ts), ("Method", METHOD_CONFIRM)]),
            200,
            "missing_field",
            "Data is missing",
            Whole,
        ),
        case(
            "Data that is cut-off JSON",
            confirm(r#"{"PlatformOrderNo":"SO-1","State":"#),
            200,
            "malformed_data",
            "Data is not valid JSON: EOF while parsing a value at line 1 column 34",
            Whole,
        ),
        case(
            "Data that is a JSON array",
            confirm(r#"[{"PlatformOrderNo":"SO-1","State":1}]"#),
            200,
            "malformed_data",
            "Data must be a JSON object",
            Whole,
        ),
        case(
            "Data nested 200 deep",
            confirm(&deep),
            200,
            "malformed_data",
            "Data is not valid JSON: recursion limit exceeded at line 1 column 128",
            Whole,
        ),
        case(
            "a State that is text",
            confirm(r#"{"PlatformOrderNo":"SO-1","State":"yes"}"#),
            200,
            "malformed_data",
            r#"Data.State must be a whole number, not "yes""#,
            Whole,
        ),
        case(
            "a State that is a fraction",
            confirm(r#"{"PlatformOrderNo":"SO-1","State":1.5,"ExtOrderNo":"SO.X"}"#),
            200,
            "malformed_data",
            "Data.State must be a whole number, not 1.5",
            Whole,
        ),
        case(
            "no PlatformOrderNo",
            confirm(r#"{"ExtOrderNo":"SO.X","State":1}"#),
            200,
            "malformed_data",
            "Data has no PlatformOrderNo",
            Whole,
        ),
        case(
            "a State no confirm carries",
            confirm(r#"{"PlatformOrderNo":"SO-1","State":7}"#),
            200,
            "malformed_data",
            "Data.State 7 is not one this callback can carry",
            Whole,
        ),
        case(
            "a confirm taken without ExtOrderNo",
            confirm(r#"{"PlatformOrderNo":"SO-1","State":1}"#),
            200,
            "malformed_data",
            "Data has State 1 but no ExtOrderNo",
            Whole,
        ),
        case(
            "a cancel without State",
            signed(METHOD_CANCEL, r#"{"PlatformOrderNo":"SO-1"}"#, now),
            200,
            "malformed_data",
            "Data has no State",
            Whole,
        ),
        Case {
            content_type: Some("application/json"),
            ..case(
                "a JSON body sent as application/json",
                serde_json::to_vec(&serde_json::json!({
                    "AppKey": APP_KEY, "TimeStamp": ts, "Method": METHOD_CONFIRM,
                    "Data": CONFIRM_SO1, "Sign": good_sign,
                }))
                .unwrap(),
                415,
                "unsupported_media_type",
                json_refused,
                Excerpt,
            )
        },
        Case {
            content_type: Some("application/json; charset=utf-8"),
            ..case(
                "a JSON array sent as JSON with a charset",
                b"[1,2,3]".to_vec(),
                415,
                "unsupported_media_type",
                json_refused,
                Excerpt,
            )
        },
        case(
            "a JSON body labelled as a form",
            format!(r#"  {{"AppKey":"{APP_KEY}","Sign":"{good_sign}"}}"#).into_bytes(),
            415,
            "unsupported_media_type",
            json_refused,
            Excerpt,
        ),
        Case {
            content_type: None,
            ..case(
                "a JSON body with no Content-Type",
                format!(r#"{{"AppKey":"{APP_KEY}"}}"#).into_bytes(),
                415,
                "unsupported_media_type",
                json_refused,
                Excerpt,
            )
        },
        Case {
            content_type: Some("multipart/form-data; boundary=XyZ"),
            ..case(
                "a multipart form",
                b"--XyZ\r\nContent-Disposition: form-data; name=\"AppKey\"\r\n\r\ndemo-app-key\r\n--XyZ--\r\n"
                    .to_vec(),
                415,
                "unsupported_media_type",
                "the body must be application/x-www-form-urlencoded with the fields AppKey, TimeStamp, \
                 Method, Data and Sign, not multipart/form-data",
                Excerpt,
            )
        },
        case(
            "a body over max_body_bytes",
            {
                let mut fields = base(CONFIRM_SO1);
                fields.push(("FailMsg", "x".repeat(70_000)));
                let sign = sim_sign(&fields, SECRET);
                with_sign(fields, &sign)
            },
            413,
            "body_too_large",
            "the body exceeds 65536 bytes or could not be read: length limit exceeded",
            Excerpt,
        ),
    ];
    // A correctly signed callback for another receiver's key is still not ours.
    cases.push(case(
        "a correctly signed callback with the AppKey changed after signing",
        {
            let mut fields = signed_form(METHOD_CONFIRM, CONFIRM_SO1, now, APP_KEY, SECRET);
            fields[0].1 = "demo-app-key-2".into();
            encode(&fields)
        },
        200,
        "unknown_app_key",
        "AppKey demo-app-key-2 is not this receiver's",
        Excerpt,
    ));
    cases
}

#[tokio::test]
async fn forty_bad_callbacks_get_their_exact_reply_are_stored_bounded_and_change_no_order() {
    let app = spawn_app_with(unlimited()).await;
    insert_by_sql(app.db(), "SO-1", "ON-1", &order_json("SO-1", &["P1"])).await;
    let receiver = app.receiver();
    let to = addr_of(receiver);
    let cases = bad_callbacks(Utc::now());
    assert!(cases.len() >= 40, "{} cases", cases.len());
    eprintln!("{} bad callbacks", cases.len());
    let mut stored = 0;
    for case in &cases {
        let what = case.what;
        let reply = post_raw(to, local(1), case.content_type, &case.body).await;
        assert_eq!(
            (reply.status, &reply.body["code"]),
            (case.status, &Value::from(case.code)),
            "{what}: {}",
            reply.body
        );
        assert_eq!(reply.body["success"], false, "{what}");
        assert_eq!(reply.body["data"]["statusCode"], case.status.max(400), "{what}");
        let description = reply.body["description"].as_str().unwrap_or_default();
        match &case.description {
            Description::Is(text) => assert_eq!(description, text, "{what}"),
        }
        assert!(!reply.body.to_string().contains(SECRET), "{what}");

        let events = events(app.db()).await;
        stored += 1;
        assert_eq!(events.len(), stored, "{what}: one event per callback");
        let event = events.last().unwrap();
        assert_eq!(event.so_id, None, "{what}");
        let outcome = if case.stored == Stored::Ignored {
            "ignored"
        } else {
            "rejected"
        };
        assert_eq!(event.outcome.as_str(), outcome, "{what}");
        assert_eq!(event.detail.as_deref(), Some(description), "{what}");
        match case.stored {
            Stored::Excerpt => {
                assert!(
                    stored_bytes(event) <= REJECTED_STORED_BYTES,
                    "{what}: {}",
                    stored_bytes(event)
                );
                if case.body.len() > 8_000 && case.status != 413 {
                    assert!(event.raw.contains(" bytes in all]"), "{what}: not marked as cut");
                }
            }
            Stored::Whole | Stored::Ignored => {
                let raw: Value = serde_json::from_str(&event.raw).unwrap();
                let sent: Vec<(String, String)> =
                    url::form_urlencoded::parse(&case.body).into_owned().collect();
                for (name, value) in sent {
                    assert_eq!(raw[&name], Value::from(value), "{what}: {name} is kept whole");
                }
            }
        }
        assert_order_untouched(app.db(), what).await;
    }

    // The receiver still works: the right callback applies.
    let reply = post_raw(
        to,
        local(1),
        FORM,
        &signed(METHOD_CONFIRM, CONFIRM_SO1, Utc::now()),
    )
    .await;
    assert_eq!((reply.status, reply.body["success"].clone()), (200, true.into()));
    assert_eq!(row(app.db(), "SO-1").await.status, OutboxStatus::Confirmed);
}

/// The issue's figure: 1000 junk POSTs of 64 KB once added 65 MB. They come from 1000 addresses
/// here, so the per-address limit does not help: the excerpt alone must hold the growth down.
#[tokio::test]
async fn a_thousand_rejected_64_kb_callbacks_from_a_thousand_addresses_add_under_3_mb() {
    let app = spawn_app_with(receiving()).await;
    let receiver = app.receiver();
    let to = addr_of(receiver);
    let before = database_bytes(app.db()).await;
    let now = Utc::now();
    let replies: Vec<Reply> = futures::stream::iter(0..1000u32)
        .map(|i| {
            // Random text does not compress: PostgreSQL cannot hide the cost in TOAST.
            let junk = incompressible(u64::from(i) + 1, 64_000);
            let body = encode(&[
                ("AppKey", APP_KEY.to_owned()),
                ("TimeStamp", stamp(now)),
                ("Method", METHOD_CONFIRM.to_owned()),
                ("Data", junk),
                ("Sign", "0123456789ABCDEF0123456789ABCDEF".to_owned()),
            ]);
            assert!(body.len() > 64_000 && body.len() <= 65_536);
            let source = IpAddr::V4(Ipv4Addr::new(127, 1, (i / 200) as u8, (i % 200 + 1) as u8));
            async move { post_raw(to, source, FORM, &body).await }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    assert!(replies
        .iter()
        .all(|r| r.status == 200 && r.body["code"] == "bad_sign"));
    let events = events(app.db()).await;
    assert_eq!(events.len(), 1000, "each address's first rejection is stored");
    assert!(events.iter().all(|e| e.outcome == CallbackOutcome::Rejected));
    let grown = database_bytes(app.db()).await - before;
    eprintln!("1000 rejected 64 KB callbacks added {grown} bytes to the database");
    assert!(
        grown < 3_000_000,
        "1000 rejected callbacks added {grown} bytes to the database"
    );
    let largest = events.iter().map(stored_bytes).max().unwrap();
    assert!(largest <= REJECTED_STORED_BYTES, "{largest}");
}

#[tokio::test]
async fn rejected_callbacks_over_the_per_address_limit_get_429_are_not_stored_and_are_counted() {
    let app = spawn_app_with(
        receiving()
            .set("callback.rejected_burst", 3)
            .set("callback.rejected_per_minute", 1),
    )
    .await;
    insert_by_sql(app.db(), "SO-1", "ON-1", &order_json("SO-1", &["P1"])).await;
    let receiver = app.receiver();
    let to = addr_of(receiver);
    let now = Utc::now();
    let unsigned = encode(&[("AppKey", APP_KEY), ("Data", "x")]);
    for i in 0..3 {
        let reply = post_raw(to, local(1), FORM, &unsigned).await;
        assert_eq!(
            (reply.status, reply.body["code"].as_str()),
            (200, Some("missing_field")),
            "{i}"
        );
    }
    for i in 0..2 {
        let reply = post_raw(to, local(1), FORM, &unsigned).await;
        assert_eq!(reply.status, 429, "{i}");
        assert_eq!(reply.body["success"], false);
        assert_eq!(reply.body["code"], "rate_limited");
        assert_eq!(
            reply.body["description"],
            "Sign is missing; too many rejected callbacks from this address, so this one was not stored"
        );
        assert_eq!(reply.body["data"]["statusCode"], 429);
        let wait: u64 = reply.retry_after.as_deref().unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "Retry-After {wait}");
    }
    assert_eq!(
        events(app.db()).await.len(),
        3,
        "nothing is stored beyond the limit"
    );

    // Another address has its own budget.
    let reply = post_raw(to, local(2), FORM, &unsigned).await;
    assert_eq!(reply.status, 200);
    // Signed callbacks from the limited address are never limited: one with malformed Data is
    // stored whole, a valid one applies.
    let malformed = signed(METHOD_CONFIRM, r#"{"PlatformOrderNo":"SO-1"}"#, now);
    let reply = post_raw(to, local(1), FORM, &malformed).await;
    assert_eq!(
        (reply.status, reply.body["code"].as_str()),
        (200, Some("malformed_data"))
    );
    let reply = post_raw(to, local(1), FORM, &signed(METHOD_CONFIRM, CONFIRM_SO1, now)).await;
    assert_eq!((reply.status, reply.body["success"].clone()), (200, true.into()));
    assert_eq!(row(app.db(), "SO-1").await.status, OutboxStatus::Confirmed);
    let outcomes: Vec<String> = events(app.db())
        .await
        .into_iter()
        .map(|e| e.outcome.to_string())
        .collect();
    assert_eq!(
        outcomes,
        ["rejected", "rejected", "rejected", "rejected", "rejected", "applied"]
    );

    let metrics = reqwest::get(format!("{}/metrics", receiver.base_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "haier_sync_callback_rejections_total{reason=\"missing_field\"} 6",
        "haier_sync_callback_rejections_not_stored_total{reason=\"missing_field\"} 2",
        "haier_sync_callback_rejections_total{reason=\"malformed_data\"} 1",
        "haier_sync_callback_rejections_not_stored_total{reason=\"malformed_data\"} 0",
        "haier_sync_callback_rejections_total{reason=\"bad_sign\"} 0",
        "haier_sync_callbacks_total{outcome=\"rejected\"} 7",
        "haier_sync_callbacks_total{outcome=\"applied\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} not in:\n{metrics}");
    }
}

#[tokio::test]
async fn a_json_body_is_told_to_use_the_form_encoding() {
    let app = spawn_app_with(receiving()).await;
    let receiver = app.receiver();
    let form = signed_form(METHOD_CONFIRM, CONFIRM_SO1, Utc::now(), APP_KEY, SECRET);
    let json: serde_json::Map<String, Value> = form.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    let reply = reqwest::Client::new()
        .post(receiver.callback_url())
        .json(&json)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 415);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["code"], "unsupported_media_type");
    let description = body["description"].as_str().unwrap();
    assert!(
        description.contains("application/x-www-form-urlencoded")
            && !description.contains("AppKey is missing"),
        "{description}"
    );
}

/// Arbitrary bodies, arbitrary forms and signed callbacks with one thing changed: the receiver
/// never fails (no 5xx, no dropped connection), always answers `success: false`, and the order
/// never changes. `PROPTEST_CASES` sets the number of cases (256 by default).
#[test]
fn arbitrary_unsigned_or_tampered_callbacks_never_panic_and_never_change_an_order() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(async {
        let app = spawn_app_with(unlimited()).await;
        insert_by_sql(app.db(), "SO-1", "ON-1", &order_json("SO-1", &["P1"])).await;
        app
    });
    let receiver = app.receiver();
    let to = addr_of(receiver);
    let now = Utc::now();
    let names = prop_oneof![
        Just("AppKey".to_owned()),
        Just("TimeStamp".to_owned()),
        Just("Method".to_owned()),
        Just("Data".to_owned()),
        Just("Sign".to_owned()),
        Just("sign".to_owned()),
        ".{0,12}",
    ];
    let data = prop_oneof![
        Just(CONFIRM_SO1.to_owned()),
        Just(r#"{"PlatformOrderNo":"SO-1","State":0,"FailMsg":"x"}"#.to_owned()),
        Just(r#"{"PlatformOrderNo":"SO-1","State":1,"itemList":[]}"#.to_owned()),
        ".{0,200}",
    ];
    let method = prop_oneof![
        Just(METHOD_CONFIRM.to_owned()),
        Just(METHOD_CANCEL.to_owned()),
        Just("hmm.scm_heorder.oostock".to_owned()),
        ".{0,30}",
    ];
    // A change that the lower-cased signing text always sees.
    let change = prop_oneof![Just(None), "[0-9#%&={}]{1,4}".prop_map(Some),];
    let content_type = prop_oneof![
        Just(FORM),
        Just(None),
        Just(Some("text/plain")),
        Just(Some("application/json")),
    ];
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        proptest::collection::vec((names, ".{0,64}"), 0..8).prop_map(|fields| encode(&fields)),
        (method, data, 0..5usize, change, "[a-z-]{0,20}").prop_map(
            move |(method, data, field, change, secret)| {
                let secret = if change.is_none() && !secret.is_empty() {
                    secret
                } else {
                    SECRET.to_owned()
                };
                let mut fields = signed_form(&method, &data, now, APP_KEY, &secret);
                match change {
                    Some(extra) => fields[field].1.push_str(&extra),
                    // Signed with another secret.
                    None if secret == SECRET => fields[4].1 = "F".repeat(32),
                    None => {}
                }
                encode(&fields)
            }
        ),
    ];
    // A failure prints its smallest case; nothing is written next to the sources.
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&(content_type, body), |(content_type, body)| {
            let reply = runtime.block_on(post_raw(to, local(1), content_type, &body));
            prop_assert!(
                [200, 413, 415].contains(&reply.status),
                "status {} for {:?}",
                reply.status,
                String::from_utf8_lossy(&body)
            );
            prop_assert_eq!(&reply.body["success"], &Value::Bool(false), "{:?}", reply.body);
            let order = runtime.block_on(row(app.db(), "SO-1"));
            prop_assert_eq!(order.status.as_str(), "pending");
            prop_assert_eq!(order.haier_order_no, None);
            prop_assert_eq!(order.cancel_state, None);
            prop_assert_eq!(order.out_of_stock_at, None);
            Ok(())
        })
        .unwrap();
    // The harness sees a change when there is one.
    let reply = runtime.block_on(post_raw(
        to,
        local(1),
        FORM,
        &signed(METHOD_CONFIRM, CONFIRM_SO1, now),
    ));
    assert_eq!(reply.body["success"], true);
    assert_eq!(
        runtime.block_on(row(app.db(), "SO-1")).status,
        OutboxStatus::Confirmed
    );
    runtime.block_on(async move { drop(app) });
}

#[test]
fn the_excerpt_is_what_the_unit_tests_say() {
    // One check here that the public helper is the one the receiver uses for its bound.
    assert_eq!(excerpt("abc", 10), "abc");
    assert!(excerpt(&"é".repeat(2_000), REJECTED_STORED_BYTES).len() <= REJECTED_STORED_BYTES);
}

#[test]
fn the_rejected_callback_limit_is_set_under_callback_and_zero_is_refused() {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs.toml");
    let load = |env: &[(&str, &str)]| {
        haier_sync::config::load_with_env(&shipped, env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    };
    let config = load(&[]).unwrap();
    assert_eq!(
        (
            config.callback.rejected_per_minute,
            config.callback.rejected_burst
        ),
        (6, 20)
    );
    let config = load(&[("HAIER_SYNC_CALLBACK__REJECTED_PER_MINUTE", "30")]).unwrap();
    assert_eq!(config.callback.rejected_per_minute, 30);
    for key in ["REJECTED_PER_MINUTE", "REJECTED_BURST"] {
        let var = format!("HAIER_SYNC_CALLBACK__{key}");
        let err = load(&[(&var, "0")]).unwrap_err().to_string();
        let name = format!("callback.{}", key.to_lowercase());
        assert!(err.contains(&name) && err.contains("must be from 1 to"), "{err}");
    }
}
