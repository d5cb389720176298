//! The memory the proxy may hold in answers it reads whole (to fill a gap, to run response
//! rules or the outbound policy, to sort): one budget of bytes for the whole process, so that
//! many large answers at once wait for room, or are refused, instead of growing the process
//! without bound. Bytes are taken from the budget as they arrive and given back when what
//! holds them is dropped.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::body::BoxError;

/// How long a read waits for room in the budget before it is refused (503).
const WAIT_FOR_ROOM: Duration = Duration::from_secs(2);

/// The process's budget for buffered answers.
#[derive(Debug)]
pub struct Buffers {
    room: Arc<Semaphore>,
    total: usize,
}

/// Bytes taken from the budget, given back on drop.
#[derive(Debug)]
pub struct Held {
    room: Arc<Semaphore>,
    bytes: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.room.add_permits(self.bytes);
    }
}

/// Why an answer could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the answer is larger than {} MiB, the most the proxy reads whole", .0 >> 20)]
    TooLarge(usize),
    #[error("the proxy holds {} MiB of answers already; no room for another", .0 >> 20)]
    NoRoom(usize),
    #[error("reading the answer: {0}")]
    Body(BoxError),
}

impl Buffers {
    pub fn new(total: usize) -> Self {
        Self {
            room: Arc::new(Semaphore::new(total.min(Semaphore::MAX_PERMITS))),
            total,
        }
    }

    pub fn total(&self) -> usize {
        self.total
    }

    /// Reads `body` whole, up to `max` bytes, taking each frame's bytes from the budget as it
    /// arrives; waits at most two seconds for room.
    pub async fn read<B>(&self, body: B, max: usize) -> Result<(Bytes, Held), ReadError>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        let max = max.min(self.total);
        let mut held = Held {
            room: self.room.clone(),
            bytes: 0,
        };
        // A body that comes in one frame (most answers of a keep-alive app) is kept as it came,
        // without a copy; a second frame starts a buffer. The buffer grows with what arrives,
        // never with what a `Content-Length` claims: the budget counts bytes as they come.
        let mut first: Option<Bytes> = None;
        let mut out = BytesMut::new();
        let mut body = std::pin::pin!(body);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ReadError::Body(e.into()))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if held.bytes + data.len() > max {
                return Err(ReadError::TooLarge(max));
            }
            self.take(&mut held, data.len()).await?;
            if first.is_none() && out.is_empty() {
                first = Some(data);
                continue;
            }
            if let Some(earlier) = first.take() {
                out.reserve(earlier.len() + data.len());
                out.extend_from_slice(&earlier);
            }
            out.extend_from_slice(&data);
        }
        Ok((first.unwrap_or_else(|| out.freeze()), held))
    }

    async fn take(&self, held: &mut Held, bytes: usize) -> Result<(), ReadError> {
        if bytes == 0 {
            return Ok(());
        }
        let n = u32::try_from(bytes).map_err(|_| ReadError::TooLarge(self.total))?;
        // Room is there nearly always: taking it then arms no timer.
        if let Ok(permit) = self.room.try_acquire_many(n) {
            permit.forget();
            held.bytes += bytes;
            return Ok(());
        }
        let wait = self.room.acquire_many(n);
        let permit = tokio::time::timeout_at(Instant::now() + WAIT_FOR_ROOM, wait)
            .await
            .map_err(|_| ReadError::NoRoom(self.total))?
            .map_err(|_| ReadError::NoRoom(self.total))?;
        permit.forget();
        held.bytes += bytes;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use http_body_util::Full;

    /// A body of `n` frames of `size` bytes.
    struct Chunks(VecDeque<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
        }
    }

    fn chunks(n: usize, size: usize) -> Chunks {
        Chunks((0..n).map(|_| Bytes::from(vec![b'x'; size])).collect())
    }

    #[tokio::test]
    async fn bytes_are_held_while_the_answer_lives_and_given_back_after() {
        let buffers = Buffers::new(1000);
        let (bytes, held) = buffers.read(chunks(3, 200), 1000).await.expect("fits");
        assert_eq!(bytes.len(), 600);
        assert_eq!(buffers.room.available_permits(), 400);
        drop(held);
        assert_eq!(buffers.room.available_permits(), 1000);
    }

    #[tokio::test]
    async fn frames_are_joined_in_order_and_a_single_frame_is_not_copied() {
        let buffers = Buffers::new(1000);
        let parts = ["", "ab", "", "cde", "f"].map(|p| Bytes::from_static(p.as_bytes()));
        let (bytes, _held) = buffers.read(Chunks(parts.into()), 1000).await.unwrap();
        assert_eq!(bytes, "abcdef");
        let one = Bytes::from(vec![b'x'; 300]);
        let (bytes, _held) = buffers
            .read(Chunks([one.clone()].into()), 1000)
            .await
            .unwrap();
        assert_eq!(bytes.as_ptr(), one.as_ptr(), "the frame itself, not a copy");
        let (bytes, _held) = buffers.read(chunks(0, 1), 1000).await.unwrap();
        assert!(bytes.is_empty());
    }

    #[tokio::test]
    async fn an_answer_past_its_own_bound_is_too_large_and_gives_its_bytes_back() {
        let buffers = Buffers::new(1 << 20);
        let err = buffers
            .read(chunks(5, 300), 1000)
            .await
            .expect_err("too large");
        assert!(matches!(err, ReadError::TooLarge(1000)), "{err}");
        assert_eq!(buffers.room.available_permits(), 1 << 20);
        let whole = buffers
            .read(Full::new(Bytes::from(vec![0; 2 << 20])), 4 << 20)
            .await;
        assert!(
            matches!(whole, Err(ReadError::TooLarge(_))),
            "the budget bounds one answer too"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn with_the_budget_taken_a_read_waits_then_is_refused() {
        let buffers = Buffers::new(1000);
        let (_bytes, held) = buffers.read(chunks(1, 900), 1000).await.expect("fits");
        let err = buffers
            .read(chunks(1, 200), 1000)
            .await
            .expect_err("no room");
        assert!(matches!(err, ReadError::NoRoom(1000)), "{err}");
        drop(held);
        assert!(buffers.read(chunks(1, 200), 1000).await.is_ok());
    }
}
