//! Async access to the blocking [`Storage`]: each call runs on tokio's blocking pool so that
//! request handlers and document tasks never stall a runtime thread on disk I/O.

use std::sync::Arc;

use crate::storage::{Storage, StorageError};

/// A cheap-to-clone handle to the storage.
#[derive(Debug, Clone)]
pub struct Db(Arc<dyn Storage>);

impl Db {
    pub fn new(storage: Arc<dyn Storage>) -> Db {
        Db(storage)
    }

    /// Runs `f` against the storage on the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Storage) -> Result<T, StorageError> + Send + 'static,
    {
        let storage = self.0.clone();
        tokio::task::spawn_blocking(move || f(&*storage))
            .await
            .map_err(|_| StorageError::Closed)?
    }

    /// The storage itself, for code that is already off the async runtime (CLI, tests).
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.0
    }
}
