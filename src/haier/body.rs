//! How the body of a 2xx reply becomes a call's result: read whole, its envelope opened and
//! its data decoded ([`WholeBody`], every call but one), or decoded as it arrives
//! ([`ListingBody`], the product listing, whose body grows with the catalog).

use super::call::Sent;
use super::client::Inner;
use super::error::HaierError;
use super::redact::BODY_LIMIT;
use super::retry::DEFAULT_RETRY_AFTER;
use super::stats::Operation;
use super::types::{KnownItems, ListedItem};
use super::wire::{self, Envelope, ListingEnd};
use bytes::Bytes;
use serde_json::Value;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How a 2xx reply becomes a call's result: its whole body opened and decoded ([`WholeBody`]),
/// or its body decoded as it arrives (the product listing, `listing.rs`).
pub(super) trait ReadReply: Send + Sync + 'static {
    type Output: Send + 'static;

    fn read(
        &self,
        inner: &Inner,
        operation: Operation,
        timeout: Duration,
        sent: Sent,
    ) -> impl std::future::Future<Output = Result<Self::Output, HaierError>> + Send;
}

/// A reply read whole (at most [`super::call::MAX_REPLY_BYTES`]), its envelope opened and its data decoded
/// by the function.
pub(super) struct WholeBody<D>(pub(super) D);

impl<T, D> ReadReply for WholeBody<D>
where
    T: Send + 'static,
    D: Fn(Value) -> Result<T, String> + Send + Sync + 'static,
{
    type Output = T;

    async fn read(
        &self,
        inner: &Inner,
        operation: Operation,
        timeout: Duration,
        sent: Sent,
    ) -> Result<T, HaierError> {
        let reply = inner.read_reply(operation, timeout, sent).await?;
        let system = operation.system();
        let op = operation.as_str();
        let decode_error = |message: String| HaierError::Decode {
            system,
            operation: op,
            message: format!(
                "{message}; body: {}",
                inner.redactor.body(&reply.body, BODY_LIMIT)
            ),
        };
        match wire::open_envelope(&reply.body).map_err(decode_error)? {
            Envelope::Data(data) => (self.0)(data).map_err(decode_error),
            Envelope::Throttled => Err(HaierError::RateLimited {
                system,
                operation: op,
                retry_after: reply.retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
            }),
            Envelope::Refused { code, message } => Err(HaierError::refused(
                operation,
                code,
                inner.redactor.scrub(&message),
            )),
        }
    }
}

/// The longest listing read, in bytes. The listing is decoded as it arrives, so this bounds
/// only how long a runaway reply is read, not memory.
pub(super) const MAX_LISTING_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Listed items handed on together.
pub(super) const LISTING_BATCH: usize = 2_000;
/// Body chunks waiting for the decoder: enough to keep it busy, few enough to keep memory flat.
const CHUNKS_IN_FLIGHT: usize = 32;

/// The product listing decoded as its body arrives, on a blocking thread: items go to the
/// sender in batches of [`LISTING_BATCH`] as soon as they are read (and only once the envelope
/// said `success:true`), so neither the body nor its JSON is ever held whole; an item whose raw
/// hash is in `known` goes undecoded. The result is how many products were handed on. An
/// attempt that is retried hands its items on again from the first: the receiver must take
/// repeats.
pub(super) struct ListingBody {
    pub(super) sink: mpsc::Sender<Vec<ListedItem>>,
    pub(super) known: Arc<KnownItems>,
}

impl ReadReply for ListingBody {
    type Output = u64;

    async fn read(
        &self,
        inner: &Inner,
        operation: Operation,
        timeout: Duration,
        sent: Sent,
    ) -> Result<u64, HaierError> {
        let Sent {
            mut response,
            started,
        } = sent;
        let system = operation.system();
        let op = operation.as_str();
        let status = response.status();
        let retry_after = super::call::retry_after(response.headers());
        let (chunks_tx, chunks_rx) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
        let sink = self.sink.clone();
        let known = Arc::clone(&self.known);
        let decoder = tokio::task::spawn_blocking(move || decode_chunks(chunks_rx, &known, &sink));
        // The first bytes, to show in an error as a whole body's first bytes are.
        let mut head: Vec<u8> = Vec::new();
        let mut length = 0u64;
        let read = async {
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| inner.transport_error(operation, timeout, e))?
            {
                length += chunk.len() as u64;
                if length > MAX_LISTING_BYTES {
                    return Err(HaierError::Decode {
                        system,
                        operation: op,
                        message: format!(
                            "the listing is larger than {MAX_LISTING_BYTES} bytes; not read further"
                        ),
                    });
                }
                if head.len() < BODY_LIMIT * 4 {
                    let take = (BODY_LIMIT * 4 - head.len()).min(chunk.len());
                    head.extend_from_slice(&chunk[..take]);
                }
                if chunks_tx.send(chunk).await.is_err() {
                    // The decoder stopped (a broken reply): its result says why.
                    break;
                }
            }
            Ok(())
        }
        .await;
        drop(chunks_tx);
        let decoded = match decoder.await {
            Ok(decoded) => decoded,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err("the listing's decoder was stopped".to_owned()),
        };
        read?;
        let latency_ms = inner.note_latency(operation, status, started);
        tracing::debug!(%system, %operation, status = status.as_u16(), latency_ms, bytes = length, "haier reply (listing)");
        match decoded {
            Ok(ListingEnd::Done { products }) => Ok(products),
            Ok(ListingEnd::Throttled) => Err(HaierError::RateLimited {
                system,
                operation: op,
                retry_after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
            }),
            Ok(ListingEnd::Refused { code, message }) => Err(HaierError::refused(
                operation,
                code,
                inner.redactor.scrub(&message),
            )),
            Err(message) => Err(HaierError::Decode {
                system,
                operation: op,
                message: format!(
                    "{message}; body starts: {}",
                    inner.redactor.body(&head, BODY_LIMIT)
                ),
            }),
        }
    }
}

/// Decodes the chunks as they come, handing items to `sink` in batches.
fn decode_chunks(
    chunks: mpsc::Receiver<Bytes>,
    known: &KnownItems,
    sink: &mpsc::Sender<Vec<ListedItem>>,
) -> Result<ListingEnd, String> {
    let gone = || "the listing's receiver is gone".to_owned();
    let mut batch: Vec<ListedItem> = Vec::with_capacity(LISTING_BATCH);
    let end = wire::decode_listing(ChunkReader::new(chunks), known, &mut |item| {
        batch.push(item);
        if batch.len() >= LISTING_BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(LISTING_BATCH));
            sink.blocking_send(full).map_err(|_| gone())?;
        }
        Ok(())
    })?;
    if !batch.is_empty() {
        sink.blocking_send(batch).map_err(|_| gone())?;
    }
    Ok(end)
}

/// A blocking reader over body chunks sent from the async side; the end of the channel is the
/// end of the body.
pub(super) struct ChunkReader {
    chunks: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl ChunkReader {
    pub(super) fn new(chunks: mpsc::Receiver<Bytes>) -> Self {
        ChunkReader {
            chunks,
            current: Bytes::new(),
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
