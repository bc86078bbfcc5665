//! A batching producer (Go's `BatchingProducer`): messages queue in a bounded queue and go
//! out in batches of up to `batch_size`, each batch as soon as the previous one is published
//! (after waiting up to `flush_interval` for more messages, if set); each `produce` gets its
//! own result.

use std::time::Duration;

use protoactor::Message;
use tokio::sync::{mpsc, oneshot};

use super::batch::EncodedMessage;
use super::{PubSubError, Publisher};
use crate::cluster::CallOptions;

/// Batching producer settings.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Most messages per batch (Go: 2000).
    pub batch_size: usize,
    /// Most messages waiting to be published; `produce` fails with
    /// [`PubSubError::QueueFull`] beyond it (Go's default is unbounded).
    pub max_queue: usize,
    /// How long a batch publish may take (Go: 5 s).
    pub publish_timeout: Duration,
    /// How long to wait for more messages before publishing a batch that is not full
    /// (Go: no wait).
    pub flush_interval: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            batch_size: 2000,
            max_queue: 100_000,
            publish_timeout: Duration::from_secs(5),
            flush_interval: Duration::ZERO,
        }
    }
}

type Item = (EncodedMessage, oneshot::Sender<Result<(), PubSubError>>);

/// Publishes the messages given to [`BatchingProducer::produce`] in batches. Dropping it
/// (or [`BatchingProducer::stop`]) publishes what is queued, then ends.
pub struct BatchingProducer {
    publisher: Publisher,
    queue: Option<mpsc::Sender<Item>>,
}

/// The result of one produced message: it resolves when its batch was published.
///
/// Dropping it does not take the message back (it is queued already); only whether it was
/// published is lost.
#[must_use = "the message is queued already; dropping the result only loses whether it was published"]
pub struct ProduceResult(oneshot::Receiver<Result<(), PubSubError>>);

impl std::future::Future for ProduceResult {
    type Output = Result<(), PubSubError>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(PubSubError::Stopped)))
    }
}

impl BatchingProducer {
    pub(crate) fn start(publisher: Publisher, topic: &str, config: ProducerConfig) -> Self {
        let (tx, rx) = mpsc::channel(config.max_queue.max(1));
        let runtime = publisher.cluster.system().runtime().clone();
        runtime.spawn(run(publisher.clone(), topic.to_string(), config, rx));
        BatchingProducer {
            publisher,
            queue: Some(tx),
        }
    }

    /// Queues `message`; fails at once if it cannot be encoded, if the queue is full
    /// (back pressure: retry later, or use [`BatchingProducer::produce_wait`]) or if the
    /// producer is stopped. The returned future gives the publish result of its batch.
    pub fn produce<M: Message>(&self, message: M) -> Result<ProduceResult, PubSubError> {
        let queue = self.queue.as_ref().ok_or(PubSubError::Stopped)?;
        let encoded = self.publisher.encode(&message)?;
        let (tx, rx) = oneshot::channel();
        queue.try_send((encoded, tx)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => PubSubError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => PubSubError::Stopped,
        })?;
        Ok(ProduceResult(rx))
    }

    /// Like [`BatchingProducer::produce`], waiting for room in the queue instead of failing.
    pub async fn produce_wait<M: Message>(&self, message: M) -> Result<ProduceResult, PubSubError> {
        let queue = self.queue.as_ref().ok_or(PubSubError::Stopped)?;
        let encoded = self.publisher.encode(&message)?;
        let (tx, rx) = oneshot::channel();
        queue
            .send((encoded, tx))
            .await
            .map_err(|_| PubSubError::Stopped)?;
        Ok(ProduceResult(rx))
    }

    /// Stops taking messages; the queued ones are still published.
    pub fn stop(&mut self) {
        self.queue = None;
    }
}

async fn run(
    publisher: Publisher,
    topic: String,
    config: ProducerConfig,
    mut rx: mpsc::Receiver<Item>,
) {
    let size = config.batch_size.max(1);
    let opts = CallOptions::default().with_timeout(config.publish_timeout);
    while let Some(first) = rx.recv().await {
        let mut items = vec![first];
        let deadline = tokio::time::Instant::now() + config.flush_interval;
        while items.len() < size {
            match rx.try_recv() {
                Ok(i) => items.push(i),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    if config.flush_interval.is_zero() {
                        break;
                    }
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(i)) => items.push(i),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
        let (messages, results): (Vec<_>, Vec<_>) = items.into_iter().unzip();
        let r = publisher.publish_encoded(&topic, messages, &opts).await;
        if let Err(e) = &r {
            tracing::warn!(topic = %topic, error = %e, "pubsub: a batch could not be published");
        }
        for tx in results {
            let _ = tx.send(r.clone());
        }
    }
}
