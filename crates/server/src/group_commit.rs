//! Group commit: one task writes every item waiting at that moment in one transaction (one
//! fsync), so many senders do not each pay for their own, while a lone item is written at once.
//! Each sender gets its answer only after the commit. If a batch fails, its items are written
//! one at a time, so that one bad item does not fail the others. Used for chat messages and for
//! provider messages (messaging and email).

use crate::error::ApiError;
use std::future::Future;
use switchboard_store::StoreError;
use tokio::sync::{mpsc, oneshot};

/// Most items committed together.
const BATCH: usize = 256;

type Job<I, O> = (I, oneshot::Sender<Result<O, ApiError>>);

/// A group-commit writer of `I`s answering `O`s.
pub struct GroupWriter<I, O> {
    tx: mpsc::Sender<Job<I, O>>,
}

impl<I, O> Clone for GroupWriter<I, O> {
    fn clone(&self) -> Self {
        GroupWriter {
            tx: self.tx.clone(),
        }
    }
}

impl<I, O> GroupWriter<I, O>
where
    I: Clone + Send + 'static,
    O: Send + 'static,
{
    /// Starts the writer task; `write` stores a batch in one transaction and answers each item
    /// in order. `name` labels the batch-size histogram.
    pub fn start<F, Fut>(name: &'static str, write: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<O>, StoreError>> + Send,
    {
        let (tx, mut rx) = mpsc::channel::<Job<I, O>>(4 * BATCH);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                metrics::histogram!("switchboard_group_commit_batch_size", "writer" => name)
                    .record(batch.len() as f64);
                let items = batch.iter().map(|(i, _)| i.clone()).collect();
                match write(items).await {
                    Ok(results) if results.len() == batch.len() => {
                        for ((_, reply), r) in batch.into_iter().zip(results) {
                            let _ = reply.send(Ok(r));
                        }
                    }
                    r => {
                        if let Err(e) = r {
                            tracing::warn!(error = %e, writer = name, size = batch.len(), "batch failed; writing one by one");
                        }
                        for (item, reply) in batch {
                            let one = write(vec![item]).await.map_err(ApiError::from).and_then(
                                |mut v| {
                                    v.pop().ok_or_else(|| {
                                        ApiError::internal("the store answered nothing")
                                    })
                                },
                            );
                            let _ = reply.send(one);
                        }
                    }
                }
            }
        });
        GroupWriter { tx }
    }

    /// Stores one item; answers after the commit.
    pub async fn write(&self, item: I) -> Result<O, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((item, reply))
            .await
            .map_err(|_| ApiError::unavailable("the writer stopped"))?;
        rx.await
            .map_err(|_| ApiError::unavailable("the writer stopped"))?
    }
}
