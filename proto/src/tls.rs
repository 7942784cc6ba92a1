//! Mutual TLS for every hearth port: masters' gRPC and HTTP ports, workers' ports, and
//! every client of them (other masters, workers, the CLI). With `--tls-cert/--tls-key/
//! --tls-ca`, a port accepts only connections whose peer shows a certificate signed by
//! the cluster's CA, and a client accepts only a server whose certificate the CA signed
//! for the name or address it dialled. Without them, ports speak plain TCP as before.
//!
//! Owns: reading and checking the certificate files ([`Tls::read`]), the connections a
//! port accepts ([`incoming`]: the TLS handshake happens here, not in tonic, so one port
//! can offer HTTP/2 for gRPC and HTTP/1.1 for browsers and scripts), the client side's
//! `https://` endpoints (through [`crate::auth::Credential`]), and making a CA and
//! certificates for tests, `hearth local --tls` and `hearth tls` ([`generate`]).
//!
//! Must not: authorise. A valid certificate only proves the peer is one of the cluster's
//! machines; what it may do is still decided by the cluster secret and submit tokens
//! ([`crate::auth`]).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// How long a peer may take over its TLS handshake before the port drops it.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a process's certificate, its key and the cluster's CA are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// This machine's certificate (PEM; a chain, leaf first), for serving and dialling.
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8, SEC1 or PKCS#1), readable by its owner only.
    pub key: PathBuf,
    /// The CA certificate(s) (PEM) that sign every member's certificate.
    pub ca: PathBuf,
}

/// A process's TLS set-up, checked once at start: what its ports present and ask for,
/// and what its clients present and trust.
#[derive(Clone)]
pub struct Tls {
    server: Arc<ServerConfig>,
    client: ClientTlsConfig,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls(..)")
    }
}

impl Tls {
    /// Reads and checks `files`. Refused, saying what to do: a missing or unreadable file,
    /// a key others may read, a file without a certificate or key, a certificate the CA
    /// did not sign or that cannot serve as both server and client (every member is
    /// both).
    pub fn read(files: &TlsFiles) -> Result<Tls, String> {
        use std::os::unix::fs::PermissionsExt;
        let read = |what: &str, path: &Path| {
            std::fs::read(path)
                .map_err(|e| format!("cannot read the TLS {what} {}: {e}", path.display()))
        };
        let key_path = files.key.display();
        let meta = std::fs::metadata(&files.key)
            .map_err(|e| format!("cannot read the TLS key {key_path}: {e}"))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "the TLS key {key_path} may be read by others (mode {mode:03o}); `chmod 600 {key_path}`"
            ));
        }
        Self::from_pem(
            &read("certificate", &files.cert)?,
            &read("key", &files.key)?,
            &read("CA certificate", &files.ca)?,
        )
        .map_err(|why| {
            format!(
                "{why} (--tls-cert {}, --tls-key {key_path}, --tls-ca {}); `hearth tls --help` makes a CA and certificates",
                files.cert.display(),
                files.ca.display()
            )
        })
    }

    /// The set-up from PEM text (see [`Tls::read`]).
    pub fn from_pem(cert: &[u8], key: &[u8], ca: &[u8]) -> Result<Tls, String> {
        // tonic's client side asks rustls for the process's provider: make it ring, the
        // only one hearth compiles in, whoever asks first.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("the TLS certificate is not PEM: {e}"))?;
        let Some(leaf) = chain.first().cloned() else {
            return Err("the TLS certificate file holds no certificate".into());
        };
        let key_pem = key;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| format!("the TLS key file holds no private key: {e}"))?;
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(ca) {
            let ca = ca.map_err(|e| format!("the TLS CA file is not PEM: {e}"))?;
            roots
                .add(ca)
                .map_err(|e| format!("the TLS CA file holds a bad certificate: {e}"))?;
        }
        if roots.is_empty() {
            return Err("the TLS CA file holds no certificate".into());
        }
        let roots = Arc::new(roots);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| format!("cannot use the TLS CA: {e}"))?;
        // Our own certificate must be one our peers accept: signed by the CA, valid now,
        // usable by a client (servers are checked by name when dialled).
        verifier
            .verify_client_cert(&leaf, &chain[1..], UnixTime::now())
            .map_err(|e| {
                format!("the TLS certificate is not one the CA's members accept as a client: {e}")
            })?;
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key.clone_key())
            .map_err(|e| format!("the TLS key does not fit the certificate: {e}"))?;
        // gRPC needs HTTP/2; browsers, curl and scripts may speak HTTP/1.1 to /json.
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let client = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .identity(Identity::from_pem(cert, key_pem));
        Ok(Tls {
            server: Arc::new(server),
            client,
        })
    }

    /// What this process's clients present and trust.
    pub fn client(&self) -> ClientTlsConfig {
        self.client.clone()
    }

    /// The rustls server set-up of its ports (for servers that are not tonic's).
    pub fn server(&self) -> Arc<ServerConfig> {
        self.server.clone()
    }
}

/// The connections a port accepts: plain TCP without `tls`; with it, only those whose
/// TLS handshake (and so the peer's certificate) succeeded. Handshakes run side by side,
/// so a slow or hostile peer holds up no one. Feed it to tonic's
/// `serve_with_incoming_shutdown`.
pub fn incoming(listener: TcpListener, tls: Option<&Tls>) -> Incoming {
    Incoming {
        listener,
        acceptor: tls.map(|t| tokio_rustls::TlsAcceptor::from(t.server())),
        handshakes: JoinSet::new(),
    }
}

/// See [`incoming`].
pub struct Incoming {
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    handshakes: JoinSet<Option<Conn>>,
}

impl futures_core::Stream for Incoming {
    type Item = io::Result<Conn>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.listener.poll_accept(cx) {
                Poll::Ready(Ok((tcp, peer))) => {
                    // Requests and answers are small and latency-bound.
                    let _ = tcp.set_nodelay(true);
                    match &this.acceptor {
                        None => return Poll::Ready(Some(Ok(Conn::Plain(tcp)))),
                        Some(acceptor) => {
                            this.handshakes.spawn(handshake(
                                acceptor.clone(),
                                tcp,
                                peer.to_string(),
                            ));
                        }
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                Poll::Pending => break,
            }
        }
        while let Poll::Ready(Some(done)) = this.handshakes.poll_join_next(cx) {
            if let Ok(Some(conn)) = done {
                return Poll::Ready(Some(Ok(conn)));
            }
        }
        Poll::Pending
    }
}

async fn handshake(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: TcpStream,
    peer: String,
) -> Option<Conn> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some(Conn::Tls(Box::new(stream))),
        Ok(Err(e)) => {
            crate::refusals::log_refusal(&peer, &format!("TLS handshake failed: {e}"), "");
            None
        }
        Err(_) => {
            crate::refusals::log_refusal(&peer, "TLS handshake timed out", "");
            None
        }
    }
}

/// One accepted connection, plain or TLS.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        match self {
            Conn::Plain(s) => s.connect_info(),
            Conn::Tls(s) => s.get_ref().0.connect_info(),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The common name of the CA [`generate`] makes.
const CA_NAME: &str = "hearth cluster CA";
/// File names in a directory [`generate`] writes.
pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca-key.pem";

/// What [`generate`] makes.
pub enum Generate<'a> {
    /// A new CA in the directory (`ca.pem`, `ca-key.pem`); refuses to replace one.
    Ca,
    /// A certificate `NAME.pem` and key `NAME-key.pem`, signed by the directory's CA,
    /// valid for `hosts` (names or IP addresses: every name the member is dialled by),
    /// as server and client.
    Cert { name: &'a str, hosts: &'a [String] },
}

/// Makes a CA or a member's certificate in `dir` (created 0700 if missing; keys 0600).
/// Returns the files written.
pub fn generate(dir: &Path, what: Generate<'_>) -> Result<Vec<PathBuf>, String> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    fn fail(what: &'static str) -> impl Fn(rcgen::Error) -> String {
        move |e| format!("cannot make the {what}: {e}")
    }
    make_private_dir(dir)?;
    let ca_params = || {
        let mut p = CertificateParams::default();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, CA_NAME);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p
    };
    match what {
        Generate::Ca => {
            let key = KeyPair::generate().map_err(fail("CA key"))?;
            let cert = ca_params().self_signed(&key).map_err(fail("CA"))?;
            let written = [
                write_new(&dir.join(CA_KEY), &key.serialize_pem(), 0o600)?,
                write_new(&dir.join(CA_CERT), &cert.pem(), 0o644)?,
            ];
            Ok(written.to_vec())
        }
        Generate::Cert { name, hosts } => {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                return Err(format!(
                    "bad certificate name {name:?}: letters, digits, '.', '_', '-'"
                ));
            }
            if hosts.is_empty() {
                return Err(
                    "a certificate needs at least one --host (a name or IP address its peers dial)"
                        .into(),
                );
            }
            let ca_key_path = dir.join(CA_KEY);
            let ca_key = std::fs::read_to_string(&ca_key_path).map_err(|e| {
                format!(
                    "cannot read the CA key {}: {e}; make a CA first (`hearth tls new-ca {}`)",
                    ca_key_path.display(),
                    dir.display()
                )
            })?;
            let ca_key = KeyPair::from_pem(&ca_key).map_err(fail("CA key"))?;
            let issuer = Issuer::new(ca_params(), ca_key);
            let key = KeyPair::generate().map_err(fail("key"))?;
            let mut p = CertificateParams::new(hosts.to_vec()).map_err(fail("certificate"))?;
            p.distinguished_name.push(DnType::CommonName, name);
            p.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            p.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            let cert = p.signed_by(&key, &issuer).map_err(fail("certificate"))?;
            let written = [
                write_new(
                    &dir.join(format!("{name}-key.pem")),
                    &key.serialize_pem(),
                    0o600,
                )?,
                write_new(&dir.join(format!("{name}.pem")), &cert.pem(), 0o644)?,
            ];
            Ok(written.to_vec())
        }
    }
}

/// A CA and one certificate for this machine (`localhost`, 127.0.0.1, ::1 and `hosts`),
/// in `dir`: what `hearth local --tls` and tests use. Returns the files to pass.
pub fn generate_local(dir: &Path, hosts: &[String]) -> Result<TlsFiles, String> {
    generate(dir, Generate::Ca)?;
    let mut all = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    all.extend(
        hosts
            .iter()
            .filter(|h| !all.contains(h))
            .cloned()
            .collect::<Vec<_>>(),
    );
    generate(
        dir,
        Generate::Cert {
            name: "node",
            hosts: &all,
        },
    )?;
    Ok(TlsFiles {
        cert: dir.join("node.pem"),
        key: dir.join("node-key.pem"),
        ca: dir.join(CA_CERT),
    })
}

fn make_private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) => Err(format!("cannot create {}: {e}", dir.display())),
    }
}

fn write_new(path: &Path, text: &str, mode: u32) -> Result<PathBuf, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| {
            format!(
                "cannot write {}: {e} (never replaced: remove it first)",
                path.display()
            )
        })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hearth-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_generated_cluster_reads_back_and_a_stranger_ca_is_refused() {
        let dir = temp_dir("gen");
        let files = generate_local(&dir, &["node1.example".into()]).expect("generate");
        Tls::read(&files).expect("our own certificates");
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&files.key), 0o600);
        assert_eq!(mode(&dir.join(CA_KEY)), 0o600);
        // Never replaced.
        let again = generate(&dir, Generate::Ca).unwrap_err();
        assert!(again.contains("never replaced"), "{again}");

        // A certificate of another CA: refused at start, naming the files.
        let other = temp_dir("other");
        let theirs = generate_local(&other, &[]).expect("generate");
        let mixed = TlsFiles {
            ca: files.ca.clone(),
            ..theirs.clone()
        };
        let why = Tls::read(&mixed).unwrap_err();
        assert!(why.contains("not one the CA's members accept"), "{why}");
        assert!(why.contains("--tls-ca"), "{why}");

        // A key others may read.
        std::fs::set_permissions(&theirs.key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let why = Tls::read(&theirs).unwrap_err();
        assert!(why.contains("chmod 600"), "{why}");

        // A key that is not the certificate's.
        std::fs::set_permissions(&theirs.key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let wrong_key = TlsFiles {
            key: theirs.key.clone(),
            ..files.clone()
        };
        let why = Tls::read(&wrong_key).unwrap_err();
        assert!(why.contains("does not fit"), "{why}");

        let bad = generate(
            &dir,
            Generate::Cert {
                name: "../x",
                hosts: &["h".into()],
            },
        )
        .unwrap_err();
        assert!(bad.contains("bad certificate name"), "{bad}");
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&other);
    }
}
