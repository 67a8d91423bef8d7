//! The config a running daemon follows across reloads. The daemon publishes each reload it
//! applies; readers that outlive a reload (the status page) take the current config per request.

use super::Config;
use std::sync::{Arc, PoisonError, RwLock};

/// Cheap to clone: every clone sees the same, current config.
#[derive(Clone)]
pub struct LiveConfig(Arc<RwLock<Arc<Config>>>);

impl LiveConfig {
    pub fn new(config: Config) -> LiveConfig {
        LiveConfig(Arc::new(RwLock::new(Arc::new(config))))
    }

    /// The config as the daemon runs it now.
    pub fn current(&self) -> Arc<Config> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replaces the config every clone sees.
    pub fn publish(&self, config: Config) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
    }
}

impl From<Config> for LiveConfig {
    fn from(config: Config) -> LiveConfig {
        LiveConfig::new(config)
    }
}

impl std::fmt::Debug for LiveConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LiveConfig").field(&self.current().path).finish()
    }
}
