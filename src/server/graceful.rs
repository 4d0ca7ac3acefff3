//! Graceful shutdown: each connection is told to finish the request it
//! serves and close, and the server waits until every one has.
//!
//! hyper-util's `GracefulShutdown` does the same, but its connections poll
//! the shutdown signal on every wake-up of their task: once or twice a
//! request. Here the signal is polled only when it fires.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::server::graceful::GracefulConnection;
use tokio::sync::watch;

use super::woken::PolledWhenWoken;

/// The server's side: one per server.
pub(super) struct Shutdown {
    tx: watch::Sender<()>,
}

/// A connection's side: alive as long as the connection is.
pub(super) struct Watcher {
    rx: watch::Receiver<()>,
}

impl Shutdown {
    pub(super) fn new() -> Self {
        Self {
            tx: watch::channel(()).0,
        }
    }

    pub(super) fn watcher(&self) -> Watcher {
        Watcher {
            rx: self.tx.subscribe(),
        }
    }

    /// Tells every connection to shut down, and waits until all have ended.
    pub(super) async fn shutdown(self) {
        let _ = self.tx.send(());
        self.tx.closed().await;
    }
}

impl Watcher {
    /// `conn`, shut down gracefully once the server is.
    pub(super) fn watch<C: GracefulConnection>(self, conn: C) -> impl Future<Output = C::Output> {
        let Watcher { mut rx } = self;
        Watched {
            conn,
            signal: PolledWhenWoken::new(async move {
                let _ = rx.changed().await;
                // Kept until the connection ends: the server counts it.
                rx
            }),
            told: None,
        }
    }
}

pin_project_lite::pin_project! {
    struct Watched<C, F: Future> {
        #[pin]
        conn: C,
        #[pin]
        signal: PolledWhenWoken<F>,
        told: Option<F::Output>,
    }
}

impl<C: GracefulConnection, F: Future> Future for Watched<C, F> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let mut this = self.project();
        if this.told.is_none() {
            if let Poll::Ready(watcher) = this.signal.poll(cx) {
                *this.told = Some(watcher);
                this.conn.as_mut().graceful_shutdown();
            }
        }
        this.conn.poll(cx)
    }
}
