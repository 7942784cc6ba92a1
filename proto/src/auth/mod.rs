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
//! Reads stay open: `GET`/`HEAD` of the status page, `/json`, `/readyz`, `/metrics` and one app
//! (`/v1/apps/ID`) change nothing and show no secret (env values are never shown).
//! Everything else needs the secret, whatever its HTTP method, so every gRPC service is
//! covered, whatever is added later.
//!
//! Separate powers ([`Access`]): the secret is for cluster members (masters, workers)
//! and admins. A master may also take named submit tokens (`--submit-token-file`, lines
//! `NAME TOKEN`): a token's holder may only submit, look at and kill apps
//! ([`submitter_may`]: the app calls of `MasterService` and the `/v1/apps` API); any
//! other call with a token is answered `PERMISSION_DENIED` (HTTP `403`). The middleware
//! hands the handlers a [`Caller`] (who it is), so an app records its submitter.
//!
//! The web UI (`/`, `/ui/...`): a browser cannot send the header, so it posts the secret
//! or a token once to `/ui/login` and keeps a [`Session`] cookie ([`SESSION_COOKIE`],
//! HttpOnly, SameSite=Strict) that stands for the same [`Caller`] on the UI's routes only
//! (never on the API's or a gRPC service's). It is signed with the secret (HMAC-SHA256),
//! so every master of the cluster takes it and none stores it; it lapses after
//! [`SESSION_SECS`], when the secret changes, or when its token is no longer listed. The
//! UI's forms carry the session's CSRF token ([`Session::csrf_ok`]).

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::path::Path;
use std::sync::Arc;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::Channel;

mod session;

use session::{session_of, ui_route};
pub use session::{Session, SESSION_COOKIE, SESSION_SECS};

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

/// Who may call a port: the cluster secret (every call) and named submit tokens (the
/// calls of [`submitter_may`] only).
#[derive(Clone, Debug)]
pub struct Access {
    secret: Secret,
    tokens: Arc<Vec<(String, Secret)>>,
}

impl From<Secret> for Access {
    fn from(secret: Secret) -> Self {
        Access {
            secret,
            tokens: Arc::new(Vec::new()),
        }
    }
}

/// Who made a request that passed [`require_secret`]: the holder of the cluster secret
/// (`token: None`), or of the named submit token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub token: Option<String>,
}

impl Access {
    /// The secret, and the submit tokens (name, token).
    pub fn new(secret: Secret, tokens: Vec<(String, Secret)>) -> Self {
        Access {
            secret,
            tokens: Arc::new(tokens),
        }
    }

    /// Who `presented` is: checked against the secret and every token, each compare in
    /// constant time, all of them every time.
    pub fn who(&self, presented: &str) -> Option<Caller> {
        let mut found = self
            .secret
            .matches(presented)
            .then_some(Caller { token: None });
        for (name, token) in self.tokens.iter() {
            if token.matches(presented) && found.is_none() {
                found = Some(Caller {
                    token: Some(name.clone()),
                });
            }
        }
        found
    }
}

/// Reads a submit-token file: one `NAME TOKEN` per line (`#` starts a comment), names of
/// letters, digits, `.`, `_`, `-`; each token as long as a secret; no name or token
/// twice, none equal to the cluster `secret`; the file readable by its owner only.
pub fn read_tokens(path: &Path, secret: &Secret) -> Result<Vec<(String, Secret)>, String> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read the submit-token file {shown}: {e}"))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "the submit-token file {shown} may be read by others (mode {mode:03o}); `chmod 600 {shown}`"
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the submit-token file {shown}: {e}"))?;
    parse_tokens(&text, secret).map_err(|why| format!("the submit-token file {shown}: {why}"))
}

/// The tokens in a submit-token file's text (see [`read_tokens`]).
pub fn parse_tokens(text: &str, secret: &Secret) -> Result<Vec<(String, Secret)>, String> {
    let mut tokens: Vec<(String, Secret)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = n + 1;
        let mut parts = line.split_whitespace();
        let (Some(name), Some(token), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("line {at}: expected `NAME TOKEN`"));
        };
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if !name.chars().all(valid) {
            return Err(format!(
                "line {at}: the name {name:?} may hold only letters, digits, '.', '_' and '-'"
            ));
        }
        let token = Secret::parse(token).map_err(|why| {
            format!("line {at}: the token of {name} {why} (`hearth secret new` makes one)")
        })?;
        if token == *secret {
            return Err(format!(
                "line {at}: the token of {name} is the cluster secret; give it its own"
            ));
        }
        if tokens.iter().any(|(n, t)| n == name || *t == token) {
            return Err(format!("line {at}: {name} or its token is listed twice"));
        }
        tokens.push((name.to_owned(), token));
    }
    Ok(tokens)
}

/// The calls a submit token may make: the app calls of `MasterService` (submit, look,
/// heartbeat and finish a client-mode app, scale, kill apps, drivers and executors) and
/// the apps' HTTP API. Never: workers' calls, decommission, drain, Raft, membership,
/// drills, a worker's port.
pub fn submitter_may(path: &str) -> bool {
    const APP_CALLS: &[&str] = &[
        "RegisterApp",
        "AppHeartbeat",
        "FinishApp",
        "KillApp",
        "ScaleApp",
        "SetExecutorLimit",
        "KillExecutors",
        "KillDriver",
        "GetState",
        "WhoLeads",
    ];
    if let Some(call) = path.strip_prefix("/hearth.v1.MasterService/") {
        return APP_CALLS.contains(&call);
    }
    // The web UI's: log in and out, submit, an app's or a driver's actions, their logs.
    const UI_CALLS: &[&str] = &["/ui/login", "/ui/logout", "/ui/submit"];
    let ui_app = ["/ui/apps/", "/ui/drivers/", "/ui/logs/"];
    path == "/v1/apps"
        || path.starts_with("/v1/apps/")
        || UI_CALLS.contains(&path)
        || ui_app.iter().any(|p| path.starts_with(p))
}

/// What a client shows: the secret as `authorization: Bearer ...` on every call, or
/// nothing (a cluster without a secret); and, with TLS ([`crate::tls`]), its certificate
/// on every connection ([`Credential::endpoint`]).
#[derive(Clone, Debug, Default)]
pub struct Credential {
    bearer: Option<MetadataValue<Ascii>>,
    tls: Option<tonic::transport::ClientTlsConfig>,
}

impl Credential {
    pub fn new(secret: Option<&Secret>) -> Self {
        Credential {
            bearer: secret.and_then(|s| MetadataValue::try_from(s.bearer()).ok()),
            tls: None,
        }
    }

    /// This credential, dialling over TLS with `tls`'s certificate when given.
    pub fn with_tls(mut self, tls: Option<&crate::tls::Tls>) -> Self {
        self.tls = tls.map(crate::tls::Tls::client);
        self
    }

    /// The endpoint of the hearth port at `addr` (`host:port`): `https://` with this
    /// process's certificate, or `http://`. Every hearth client dials through this.
    pub fn endpoint(&self, addr: &str) -> Result<tonic::transport::Endpoint, String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|e| format!("bad address {addr}: {e}"))?;
        match &self.tls {
            None => Ok(endpoint),
            Some(tls) => endpoint
                .tls_config(tls.clone())
                .map_err(|e| format!("TLS to {addr}: {e}")),
        }
    }
}

impl Interceptor for Credential {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.bearer {
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
    State(access): State<Option<Access>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(access) = access else {
        return next.run(req).await;
    };
    // On the UI's routes, a login session stands for its caller (its handlers check the
    // forms' CSRF token against it).
    let session = ui_route(req.uri().path())
        .then(|| session_of(&access, &req))
        .flatten();
    if let Some(s) = &session {
        req.extensions_mut().insert(s.clone());
    }
    // The login form's POST: its handler checks what was posted (`Access::who`).
    let login = req.method() == Method::POST && req.uri().path() == "/ui/login";
    if open_read(&req) || login {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let found = match presented {
        Some(p) => access.who(p.trim()).ok_or("wrong secret"),
        None => session.map(|s| s.caller).ok_or("no secret"),
    };
    let why = match found {
        Ok(caller) => {
            let path = req.uri().path().to_owned();
            if let Some(name) = caller.token.as_deref().filter(|_| !submitter_may(&path)) {
                return refuse_submitter(&req, name, &path);
            }
            req.extensions_mut().insert(caller);
            return next.run(req).await;
        }
        Err(why) => why,
    };
    let peer = req
        .extensions()
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(|c| c.remote_addr())
        .map_or_else(|| "an unknown peer".to_owned(), |a| a.to_string());
    crate::refusals::log_refusal(&peer, why, req.uri().path());
    let message = format!(
        "{why}: this cluster wants `authorization: Bearer <secret>` with the secret of its --secret-file (HEARTH_SECRET_FILE)"
    );
    refusal(&req, tonic::Status::unauthenticated(message))
}

/// `status` as the answer to `req`: a gRPC status for a gRPC call, else JSON with the
/// matching HTTP code (401 for UNAUTHENTICATED, 403 for PERMISSION_DENIED).
fn refusal(req: &Request, status: tonic::Status) -> Response {
    if is_grpc(req) {
        let (parts, body) = status.into_http::<tonic::body::Body>().into_parts();
        return Response::from_parts(parts, axum::body::Body::new(body));
    }
    let (http, code) = match status.code() {
        tonic::Code::PermissionDenied => (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
        _ => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
    };
    let body = serde_json::json!({ "code": code, "error": status.message(), "leader": null });
    let mut resp = (http, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A submit token's holder asked for more than [`submitter_may`]: `PERMISSION_DENIED`
/// (HTTP `403`), nothing done.
fn refuse_submitter(req: &Request, name: &str, path: &str) -> Response {
    let message = format!(
        "the submit token {name} may submit, look at and kill apps; {path} needs the cluster secret"
    );
    tracing::warn!(
        token = name,
        path,
        "refused a submit token's request beyond its power"
    );
    refusal(req, tonic::Status::permission_denied(message))
}

fn is_grpc(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/grpc"))
}

/// The requests anyone may make: `GET`/`HEAD` of the read-only pages (the UI's pages of
/// one app, driver or worker too; not its logs). A list, not a rule on the method alone:
/// a gRPC service answers whatever the HTTP method (a `GET` with gRPC framing reached
/// `MasterService` before this list existed).
fn open_read(req: &Request) -> bool {
    let path = req.uri().path();
    let one = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|id| !id.is_empty() && !id.contains('/'))
    };
    (req.method() == Method::GET || req.method() == Method::HEAD)
        && (matches!(
            path,
            "/" | "/json" | "/json/" | "/readyz" | "/metrics" | "/ui/login"
        ) || ["/v1/apps/", "/ui/apps/", "/ui/drivers/", "/ui/workers/"]
            .into_iter()
            .any(one))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    pub(super) fn secret(c: char) -> Secret {
        Secret::parse(&c.to_string().repeat(40)).expect("secret")
    }

    #[test]
    fn submit_tokens_are_named_unique_and_never_the_secret() {
        let s = secret('s');
        let a = "a".repeat(40);
        let tokens =
            parse_tokens(&format!("# comment\n\nalice {a}  # trailing\n"), &s).expect("tokens");
        assert_eq!(tokens, vec![("alice".to_owned(), secret('a'))]);
        let b = "b".repeat(40);
        for (text, why) in [
            ("alice".to_string(), "line 1: expected `NAME TOKEN`"),
            (format!("alice {a} extra"), "line 1: expected `NAME TOKEN`"),
            (format!("al ice {a}"), "line 1: expected `NAME TOKEN`"),
            (format!("al/ice {a}"), "line 1: the name \"al/ice\" may hold only letters, digits, '.', '_' and '-'"),
            ("alice short".to_string(), "line 1: the token of alice holds 5 bytes, fewer than 32; make one with `hearth secret new > FILE` (`hearth secret new` makes one)"),
            (format!("alice {}", "s".repeat(40)), "line 1: the token of alice is the cluster secret; give it its own"),
            (format!("alice {a}\nalice {b}"), "line 2: alice or its token is listed twice"),
            (format!("alice {a}\nbob {a}"), "line 2: bob or its token is listed twice"),
        ] {
            assert_eq!(parse_tokens(&text, &s), Err(why.to_owned()), "{text}");
        }
    }

    #[test]
    fn the_secret_and_each_token_name_their_caller() {
        let access = Access::new(secret('s'), vec![("alice".into(), secret('a'))]);
        assert_eq!(access.who(&"s".repeat(40)), Some(Caller { token: None }));
        assert_eq!(
            access.who(&"a".repeat(40)),
            Some(Caller {
                token: Some("alice".into())
            })
        );
        assert_eq!(access.who(&"x".repeat(40)), None);
        assert_eq!(access.who(""), None);
    }

    fn request(method: &str, path: &str, cookie: Option<&str>) -> Request {
        let mut b = axum::http::Request::builder().method(method).uri(path);
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        b.body(axum::body::Body::empty()).expect("request")
    }

    #[test]
    fn the_ui_reads_its_cookie_and_opens_its_pages_only() {
        let access = Access::from(secret('s'));
        let value = access
            .open_session(&Caller { token: None }, now_secs())
            .expect("session");
        let cookie = format!("theme=dark; {SESSION_COOKIE}={value}");
        let req = request("POST", "/ui/submit", Some(&cookie));
        assert!(session_of(&access, &req).is_some());
        let wrong = format!("{SESSION_COOKIE}=x{value}");
        assert!(session_of(&access, &request("POST", "/ui/submit", Some(&wrong))).is_none());
        assert!(session_of(&access, &request("POST", "/ui/submit", None)).is_none());
        // Only the UI's routes count a session.
        assert!(ui_route("/") && ui_route("/ui/apps/app-1/kill"));
        assert!(!ui_route("/v1/apps/app-1/kill") && !ui_route("/hearth.v1.MasterService/KillApp"));
        for open in [
            "/",
            "/ui/login",
            "/ui/apps/app-1",
            "/ui/drivers/d",
            "/ui/workers/w",
        ] {
            assert!(open_read(&request("GET", open, None)), "{open}");
        }
        for closed in [
            "/ui/logs/app-1/stdout",
            "/ui/apps/app-1/kill",
            "/ui/apps/",
            "/ui/submit",
        ] {
            assert!(!open_read(&request("GET", closed, None)), "{closed}");
        }
        assert!(!open_read(&request("POST", "/ui/login", None)));
    }

    fn now_secs() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    }

    #[test]
    fn a_submit_token_reaches_the_app_calls_only() {
        for ok in [
            "/hearth.v1.MasterService/RegisterApp",
            "/hearth.v1.MasterService/KillApp",
            "/hearth.v1.MasterService/GetState",
            "/v1/apps",
            "/v1/apps/app-1/executors",
            "/ui/login",
            "/ui/submit",
            "/ui/apps/app-1/kill",
            "/ui/drivers/driver-1/kill",
            "/ui/logs/app-1/stdout",
        ] {
            assert!(submitter_may(ok), "{ok}");
        }
        for no in [
            "/hearth.v1.MasterService/RegisterWorker",
            "/hearth.v1.MasterService/DecommissionWorker",
            "/hearth.v1.MasterService/DrainWorker",
            "/hearth.v1.MasterService/UndrainWorker",
            "/hearth.v1.MasterService/ExecutorStateChanged",
            "/hearth.v1.RaftAdmin/AddMaster",
            "/hearth.v1.RaftService/AppendEntries",
            "/hearth.v1.WorkerControl/LaunchExecutor",
            "/hearth.v1.Drill/Inject",
            "/v1/appsx",
            "/",
            "/ui/workers/w-1/decommission",
        ] {
            assert!(!submitter_may(no), "{no}");
        }
    }
}
