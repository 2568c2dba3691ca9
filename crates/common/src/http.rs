//! What every Rivulet HTTP server gets: bounded requests (body, URI and header sizes, a time
//! limit for request/response routes) and a graceful shutdown with a deadline, so neither a
//! hostile client nor a slow one can hold memory or the exit hostage.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The bounds of [`harden`].
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request body (413 beyond).
    pub body: usize,
    /// Longest request URI, path and query (414 beyond).
    pub uri: usize,
    /// Most header bytes, names and values (431 beyond).
    pub headers: usize,
    /// Time limit of a request/response exchange (408 beyond).
    pub request: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body: 2 << 20,
            uri: 8 << 10,
            headers: 32 << 10,
            request: Duration::from_secs(30),
        }
    }
}

/// `app` with the bounds of `limits` on every route. Refusals answer in JSON
/// (`{"error": …}`); a binary with its own error shape maps its own refusals first (a body
/// extractor's rejection, for one), these are the last line.
pub fn harden(app: Router, limits: Limits) -> Router {
    app.layer(SizeLimitLayer::new(&limits))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request,
        ))
        .layer(DefaultBodyLimit::max(limits.body))
}

/// A layer refusing a request whose URI (414) or headers (431) exceed [`Limits`], before any
/// handler runs. Hand-written (no boxed future) so a hot read path pays two length sums.
#[derive(Clone, Copy, Debug)]
pub struct SizeLimitLayer {
    uri: usize,
    headers: usize,
    refuse: fn(StatusCode, &str) -> Response,
}

impl SizeLimitLayer {
    /// The URI and header bounds of `limits`, refusals in `{"error": …}`.
    pub fn new(limits: &Limits) -> Self {
        Self::answering(limits, refuse)
    }

    /// The same bounds, refusals in a server's own error shape (the registry's Confluent one).
    pub fn answering(limits: &Limits, refuse: fn(StatusCode, &str) -> Response) -> Self {
        Self {
            uri: limits.uri,
            headers: limits.headers,
            refuse,
        }
    }

    /// Why a request with this head is refused, if it is.
    fn refusal<B>(&self, request: &axum::http::Request<B>) -> Option<Response> {
        if uri_len(request.uri()) > self.uri {
            return Some((self.refuse)(
                StatusCode::URI_TOO_LONG,
                "the request URI is too long",
            ));
        }
        let size: usize = request
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        (size > self.headers).then(|| {
            (self.refuse)(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "the request headers are too large",
            )
        })
    }
}

impl<S> tower::Layer<S> for SizeLimitLayer {
    type Service = SizeLimit<S>;
    fn layer(&self, inner: S) -> SizeLimit<S> {
        SizeLimit {
            inner,
            limits: *self,
        }
    }
}

/// The service of [`SizeLimitLayer`].
#[derive(Clone, Debug)]
pub struct SizeLimit<S> {
    inner: S,
    limits: SizeLimitLayer,
}

impl<S, B> tower::Service<axum::http::Request<B>> for SizeLimit<S>
where
    S: tower::Service<axum::http::Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Limited<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        match self.limits.refusal(&request) {
            Some(response) => Limited::Refused {
                response: Some(response),
            },
            None => Limited::Passed {
                inner: self.inner.call(request),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`SizeLimit`]: the refusal, or the inner service's answer.
    #[project = LimitedProjection]
    pub enum Limited<F> {
        /// Refused before the inner service saw the request.
        Refused { response: Option<Response> },
        /// Passed on.
        Passed { #[pin] inner: F },
    }
}

impl<F, E> Future for Limited<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.project() {
            LimitedProjection::Refused { response } => match response.take() {
                Some(response) => std::task::Poll::Ready(Ok(response)),
                None => std::task::Poll::Pending, // polled after completion
            },
            LimitedProjection::Passed { inner } => inner.poll(cx),
        }
    }
}

/// The length of `uri` as sent (scheme and authority when absolute, path, `?query`), counted
/// without building it: this runs on every request.
fn uri_len(uri: &axum::http::Uri) -> usize {
    let scheme = uri.scheme_str().map_or(0, |s| s.len() + 3);
    let authority = uri.authority().map_or(0, |a| a.as_str().len());
    let query = uri.query().map_or(0, |q| q.len() + 1);
    scheme + authority + uri.path().len() + query
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// Serves `app` on `listener` until `token` is cancelled, then lets requests in flight finish
/// for at most `grace` (less than a pod's termination grace period) before returning.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    token: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let cancelled = token.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(cancelled.cancelled_owned());
    let server = std::pin::pin!(server.into_future());
    run_with_deadline(server, token, grace).await
}

async fn run_with_deadline(
    mut server: std::pin::Pin<&mut impl Future<Output = std::io::Result<()>>>,
    token: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    tokio::select! {
        result = &mut server => return result,
        () = token.cancelled() => {}
    }
    match tokio::time::timeout(grace, server).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(
                ?grace,
                "Requests still in flight at the shutdown deadline: dropped."
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests
    use super::*;
    use axum::body::Body;
    use axum::extract::Request;
    use axum::routing::{get, post};
    use tower::ServiceExt;

    fn app() -> Router {
        let limits = Limits {
            body: 1024,
            uri: 256,
            headers: 1024,
            request: Duration::from_millis(200),
        };
        harden(
            Router::new()
                .route("/", get(|| async { "ok" }))
                .route(
                    "/echo",
                    post(|body: axum::body::Bytes| async move { body.len().to_string() }),
                )
                .route(
                    "/slow",
                    get(|| async {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        "late"
                    }),
                ),
            limits,
        )
    }

    async fn status(request: Request<Body>) -> StatusCode {
        app().oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn oversized_requests_are_refused() {
        let ok = Request::get("/").body(Body::empty()).unwrap();
        assert_eq!(status(ok).await, StatusCode::OK);
        let long = Request::get(format!("/?q={}", "a".repeat(300)))
            .body(Body::empty())
            .unwrap();
        assert_eq!(status(long).await, StatusCode::URI_TOO_LONG);
        let headers = Request::get("/")
            .header("x-pad", "a".repeat(2000))
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            status(headers).await,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        let body = Request::post("/echo")
            .body(Body::from(vec![b'x'; 4096]))
            .unwrap();
        assert_eq!(status(body).await, StatusCode::PAYLOAD_TOO_LARGE);
        let small = Request::post("/echo")
            .body(Body::from(vec![b'x'; 10]))
            .unwrap();
        assert_eq!(status(small).await, StatusCode::OK);
    }

    #[test]
    fn uri_length_is_what_was_sent() {
        for text in ["/", "/a/b?x=1&y=2", "http://h:80/p?q", "/p?"] {
            let uri: axum::http::Uri = text.parse().unwrap();
            assert_eq!(uri_len(&uri), uri.to_string().len(), "{text}");
        }
    }

    #[tokio::test]
    async fn slow_exchanges_time_out() {
        let slow = Request::get("/slow").body(Body::empty()).unwrap();
        assert_eq!(status(slow).await, StatusCode::REQUEST_TIMEOUT);
    }

    #[tokio::test]
    async fn shutdown_waits_at_most_its_grace() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let entered = std::sync::Arc::new(tokio::sync::Notify::new());
        let signal = entered.clone();
        let hung = Router::new().route(
            "/",
            get(move || async move {
                signal.notify_one();
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "never"
            }),
        );
        let token = CancellationToken::new();
        let server = tokio::spawn(serve(
            listener,
            hung,
            token.clone(),
            Duration::from_millis(100),
        ));
        // A request in flight that would never finish.
        let client = tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            use tokio::io::AsyncWriteExt;
            stream
                .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        // The request is in its handler before the shutdown begins.
        tokio::time::timeout(Duration::from_secs(30), entered.notified())
            .await
            .unwrap();
        token.cancel();
        let done = tokio::time::timeout(Duration::from_secs(30), server).await;
        assert!(
            done.is_ok(),
            "the server returned after its grace, not after the request"
        );
        client.abort();
    }
}
