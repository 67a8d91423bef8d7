//! The status page served in-process for a test's app.

use super::TestApp;
use std::net::SocketAddr;
use tokio_util::sync::{CancellationToken, DropGuard};

/// Serves `app`'s status page on a free port of 127.0.0.1; the page stops when the guard drops.
pub async fn serve_status_page(app: &TestApp) -> (SocketAddr, DropGuard) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    tokio::spawn(haier_sync::admin::serve(
        app.db().clone(),
        app.config().clone(),
        listener,
        cancel.clone(),
    ));
    (addr, cancel.drop_guard())
}
