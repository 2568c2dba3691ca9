//! Graceful shutdown: one token, cancelled on SIGTERM (what Kubernetes sends) or Ctrl-C.

use tokio_util::sync::CancellationToken;

/// Waits for SIGTERM or Ctrl-C. If a handler cannot be installed the error is logged and only
/// the other signal is awaited, so a process is never left unable to stop.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "Could not listen for Ctrl-C.");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "Could not listen for SIGTERM.");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Received Ctrl-C, shutting down."),
        () = terminate => tracing::info!("Received SIGTERM, shutting down."),
    }
}

/// Returns a token that is cancelled when the process receives SIGTERM or Ctrl-C.
/// Must be called inside a Tokio runtime.
pub fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        trigger.cancel();
    });
    token
}
