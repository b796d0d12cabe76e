//! Errors of the scheduler and the node lifecycle controller.

/// What can go wrong talking to the API server or watching it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the API server failed.
    #[error("API request {what}: {source}")]
    Api {
        /// What was being done (`binding pod ns/name to node-1`).
        what: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// A watch stream ended or failed before its cache was filled.
    #[error("waiting for the {kind} cache: {source}")]
    Cache {
        /// The watched kind.
        kind: &'static str,
        /// Why the cache never became ready.
        #[source]
        source: bramble_informer::Error,
    },
}

impl Error {
    /// Wraps a client error with a description of the request.
    pub fn api(what: impl Into<String>, source: kube::Error) -> Error {
        Error::Api {
            what: what.into(),
            source,
        }
    }

    /// True for 404 Not Found answers (the object is gone; nothing to retry).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api { source: kube::Error::Api(s), .. } if s.code == 404)
    }

    /// True for 409 Conflict answers (stale resourceVersion or already bound).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Api { source: kube::Error::Api(s), .. } if s.code == 409)
    }
}
