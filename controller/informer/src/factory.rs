//! One informer per kind for the whole process.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

use crate::informer::Informer;

/// The process's informers, keyed by kind: [`SharedInformers::get`] starts the informer of a
/// kind on first use and hands out the same one to every later caller. Cheap to clone.
#[derive(Clone)]
pub struct SharedInformers {
    client: Client,
    informers: Arc<Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>>,
}

impl SharedInformers {
    /// Informers listing and watching through `client` (which must be allowed to list and
    /// watch every kind asked for, cluster-wide).
    pub fn new(client: Client) -> SharedInformers {
        SharedInformers {
            client,
            informers: Arc::default(),
        }
    }

    /// The informer of `K`, started (on the current tokio runtime) if this is the first ask.
    pub fn get<K>(&self) -> Informer<K>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let mut map = self.informers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = map
            .get(&TypeId::of::<K>())
            .and_then(|b| b.downcast_ref::<Informer<K>>())
        {
            return i.clone();
        }
        let informer = Informer::start(Api::<K>::all(self.client.clone()));
        map.insert(TypeId::of::<K>(), Box::new(informer.clone()));
        informer
    }

    /// How many kinds have an informer.
    pub fn len(&self) -> usize {
        self.informers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Whether no informer has been started.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The client the informers use.
    pub fn client(&self) -> &Client {
        &self.client
    }
}
