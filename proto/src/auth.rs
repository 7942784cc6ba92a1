//! The cluster secret: who may talk to a master's or a worker's port.
//!
//! Masters, workers and the CLI read one [`Secret`] from `--secret-file` /
//! `HEARTH_SECRET_FILE` (at least [`MIN_SECRET_BYTES`] bytes, in a file only its owner
//! may read). Clients send it on every call as `authorization: Bearer <secret>` (gRPC
//! metadata and HTTP header are the same thing): [`Credential`] adds it to a tonic
//! channel ([`AuthChannel`]). Servers check it in [`require_secret`], one axum middleware
//! in front of every gRPC service and HTTP route of a port: a request without it, or with
//! another, is answered `UNAUTHENTICATED` (gRPC) or `401` (HTTP) before any handler runs,
//! and logged with the peer's address (at most once a second).
//!
//! Reads stay open: `GET`/`HEAD` of the status page, `/json`, `/readyz` and one app
//! (`/v1/apps/ID`) change nothing and show no secret (env values are never shown).
//! Everything else needs the secret, whatever its HTTP method, so every gRPC service is
//! covered, whatever is added later.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::Channel;

/// The shortest secret accepted: 32 bytes (what `hearth secret new` makes is 64 hex
/// digits).
pub const MIN_SECRET_BYTES: usize = 32;

/// The cluster secret. Its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// The secret in `path`: the file's text without surrounding whitespace. Refused, with
    /// what to do: a file others may read or write, a secret shorter than
    /// [`MIN_SECRET_BYTES`], one that cannot travel in a header.
    pub fn read(path: &Path) -> Result<Secret, String> {
        use std::os::unix::fs::PermissionsExt;
        let shown = path.display();
        let meta = std::fs::metadata(path)
            .map_err(|e| format!("cannot read the secret file {shown}: {e}"))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "the secret file {shown} may be read by others (mode {mode:03o}); `chmod 600 {shown}`"
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the secret file {shown}: {e}"))?;
        Self::parse(text.trim()).map_err(|why| format!("the secret file {shown} {why}"))
    }

    /// A secret from its text (see [`Secret::read`]).
    pub fn parse(text: &str) -> Result<Secret, String> {
        if text.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "holds {} bytes, fewer than {MIN_SECRET_BYTES}; make one with `hearth secret new > FILE`",
                text.len()
            ));
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "holds spaces or non-ASCII characters; make one with `hearth secret new > FILE`"
                    .into(),
            );
        }
        Ok(Secret(text.into()))
    }

    /// A new random secret: 32 bytes from the kernel, as 64 hex digits.
    pub fn random_text() -> std::io::Result<String> {
        let mut bytes = [0u8; 32];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
        Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Writes a new random secret to `path`, readable by its owner only.
    pub fn create(path: &Path) -> std::io::Result<Secret> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let text = Self::random_text()?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        writeln!(f, "{text}")?;
        f.sync_all()?;
        Ok(Secret(text.into()))
    }

    /// Whether `presented` is this secret, in time that depends only on its length.
    pub fn matches(&self, presented: &str) -> bool {
        same_bytes(self.0.as_bytes(), presented.as_bytes())
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

/// Compares two byte strings without stopping at the first difference.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
    }
    diff == 0
}

/// What a client sends: the secret as `authorization: Bearer ...` on every call, or
/// nothing (a cluster without a secret).
#[derive(Clone, Debug, Default)]
pub struct Credential(Option<MetadataValue<Ascii>>);

impl Credential {
    pub fn new(secret: Option<&Secret>) -> Self {
        Credential(secret.and_then(|s| MetadataValue::try_from(s.bearer()).ok()))
    }
}

impl Interceptor for Credential {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// A channel whose every call carries the [`Credential`].
pub type AuthChannel = InterceptedService<Channel, Credential>;

/// `channel` with `credential` on every call.
pub fn authed(channel: Channel, credential: &Credential) -> AuthChannel {
    InterceptedService::new(channel, credential.clone())
}

/// The axum middleware in front of a port (use with
/// `axum::middleware::from_fn_with_state(secret, require_secret)`): without a secret it
/// lets everything through; with one, a request that changes something must carry it.
pub async fn require_secret(
    State(secret): State<Option<Secret>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(secret) = secret else {
        return next.run(req).await;
    };
    if open_read(&req) {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let why = match presented {
        Some(token) if secret.matches(token.trim()) => return next.run(req).await,
        Some(_) => "wrong secret",
        None => "no secret",
    };
    let peer = req
        .extensions()
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(|c| c.remote_addr())
        .map_or_else(|| "an unknown peer".to_owned(), |a| a.to_string());
    log_refusal(&peer, why, req.uri().path());
    let message = format!(
        "{why}: this cluster wants `authorization: Bearer <secret>` with the secret of its --secret-file (HEARTH_SECRET_FILE)"
    );
    let grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/grpc"));
    if grpc {
        let (parts, body) = tonic::Status::unauthenticated(message)
            .into_http::<tonic::body::Body>()
            .into_parts();
        return Response::from_parts(parts, axum::body::Body::new(body));
    }
    let body = serde_json::json!({ "code": "UNAUTHENTICATED", "error": message, "leader": null });
    let mut resp = (StatusCode::UNAUTHORIZED, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The requests anyone may make: `GET`/`HEAD` of the read-only pages. A list, not a
/// rule on the method alone: a gRPC service answers whatever the HTTP method (a `GET`
/// with gRPC framing reached `MasterService` before this list existed).
fn open_read(req: &Request) -> bool {
    let path = req.uri().path();
    (req.method() == Method::GET || req.method() == Method::HEAD)
        && (matches!(path, "/" | "/json" | "/json/" | "/readyz")
            || (path.starts_with("/v1/apps/") && !path[9..].contains('/')))
}

/// Logs a refusal, at most once a second (a flood must not fill the disk), with how many
/// were not logged since.
fn log_refusal(peer: &str, why: &str, path: &str) {
    static LAST_SECOND: AtomicU64 = AtomicU64::new(0);
    static QUIET: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if LAST_SECOND.swap(now, Ordering::Relaxed) == now {
        QUIET.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let unlogged = QUIET.swap(0, Ordering::Relaxed);
    tracing::warn!(%peer, why, path, unlogged, "refused an unauthenticated request");
}
