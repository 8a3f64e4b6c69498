//! Transport security and authentication for Vigil's gRPC servers and clients, and secrets read
//! from files (a mounted Kubernetes Secret, never an environment variable or the config itself:
//! a file does not show in `/proc/<pid>/environ`, `kubectl describe` or a logged config).
//!
//! * Server: `[server.tls]` serves TLS (rustls, through tonic); with `client_ca_file` it
//!   requires a client certificate signed by that CA (mTLS). `[server.auth]` requires
//!   `authorization: Bearer <token>` on every call except `grpc.health.v1`, so Kubernetes
//!   probes and load balancers still see readiness; reflection is not exempt (it describes the
//!   API). Both are off unless configured; the production overlay turns them on.
//! * Client: [`ClientSecurity`] (a config section and CLI flags alike) builds the endpoint (TLS
//!   with the given CA, or the system roots for `https://`) and the [`Bearer`] interceptor.
//!
//! The token check is written here rather than taken from `tower-http`'s
//! `ValidateRequestHeaderLayer::bearer`: that layer compares with `==` (timing leaks how much of
//! a guess matched), accepts exactly one token (no rotation without downtime), cannot exempt
//! the health service, and answers HTTP 401, which gRPC clients report as a transport error
//! instead of `UNAUTHENTICATED`.

use crate::ConfigError;
use crate::gate::{Gated, Guard};
use prometheus::IntCounter;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tonic::codegen::http::Request;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Shortest bearer token accepted (bytes): anything shorter is too guessable to be a secret.
pub const MIN_TOKEN_LEN: usize = 16;

/// Reads a secret from `path`, without its trailing newline; the error names `field` (the config
/// field that gave the path) and never quotes the file's content.
pub fn read_secret(field: &str, path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::invalid(field, format!("cannot read {}: {e}", path.display())))?;
    let secret = text.trim_end_matches(['\r', '\n']).to_owned();
    if secret.is_empty() {
        return Err(ConfigError::invalid(
            field,
            format!("{} is empty", path.display()),
        ));
    }
    Ok(secret)
}

fn read_pem(field: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    let pem = std::fs::read(path)
        .map_err(|e| ConfigError::invalid(field, format!("cannot read {}: {e}", path.display())))?;
    if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(ConfigError::invalid(
            field,
            format!("{} is not PEM (no -----BEGIN line)", path.display()),
        ));
    }
    Ok(pem)
}

/// `[server.tls]`: serve gRPC over TLS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTls {
    /// The server's certificate chain (PEM).
    pub cert_file: PathBuf,
    /// Its private key (PEM).
    pub key_file: PathBuf,
    /// When set, clients must present a certificate signed by this CA (PEM): mutual TLS.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

/// `[server.auth]`: require a bearer token on every call but health checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerAuth {
    /// The accepted tokens, one per line (two during a rotation); blank lines and lines
    /// starting with `#` are ignored. Each is at least [`MIN_TOKEN_LEN`] visible ASCII bytes.
    pub tokens_file: PathBuf,
}

/// The tokens of `path`, checked.
fn read_tokens(field: &str, path: &Path) -> Result<Vec<Vec<u8>>, ConfigError> {
    let text = read_secret(field, path)?;
    let mut tokens = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // Neither the token nor a part of it is ever quoted: only where it is.
        if line.len() < MIN_TOKEN_LEN {
            return Err(ConfigError::invalid(
                field,
                format!(
                    "{} line {}: a token must be at least {MIN_TOKEN_LEN} bytes",
                    path.display(),
                    i + 1
                ),
            ));
        }
        if !line.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::invalid(
                field,
                format!(
                    "{} line {}: a token must be visible ASCII without spaces",
                    path.display(),
                    i + 1
                ),
            ));
        }
        tokens.push(line.as_bytes().to_vec());
    }
    if tokens.is_empty() {
        return Err(ConfigError::invalid(
            field,
            format!("{} holds no token", path.display()),
        ));
    }
    Ok(tokens)
}

/// A server's loaded security: its TLS configuration and its token check.
#[derive(Debug, Clone, Default)]
pub struct ServerSecurity {
    pub(crate) tls: Option<tonic::transport::ServerTlsConfig>,
    mtls: bool,
    pub(crate) auth: AuthLayer,
}

impl ServerSecurity {
    /// Reads the files `tls` and `auth` name; errors name the field. `rejected` counts calls
    /// refused for a missing or wrong token.
    pub fn load(
        tls: Option<&ServerTls>,
        auth: Option<&ServerAuth>,
        rejected: Option<IntCounter>,
    ) -> Result<ServerSecurity, ConfigError> {
        let mtls = tls.is_some_and(|t| t.client_ca_file.is_some());
        let tls = match tls {
            None => None,
            Some(t) => {
                let identity = Identity::from_pem(
                    read_pem("server.tls.cert_file", &t.cert_file)?,
                    read_pem("server.tls.key_file", &t.key_file)?,
                );
                let mut config = tonic::transport::ServerTlsConfig::new().identity(identity);
                if let Some(ca) = &t.client_ca_file {
                    config = config.client_ca_root(Certificate::from_pem(read_pem(
                        "server.tls.client_ca_file",
                        ca,
                    )?));
                }
                Some(config)
            }
        };
        let tokens = match auth {
            None => None,
            Some(a) => Some(Arc::from(read_tokens(
                "server.auth.tokens_file",
                &a.tokens_file,
            )?)),
        };
        Ok(ServerSecurity {
            tls,
            mtls,
            auth: AuthLayer { tokens, rejected },
        })
    }

    /// Whether the server speaks TLS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether it requires a client certificate.
    pub fn mtls(&self) -> bool {
        self.mtls
    }

    /// Whether it requires a bearer token.
    pub fn token_auth(&self) -> bool {
        self.auth.tokens.is_some()
    }
}

/// Calls that never need a token: the probes.
fn exempt(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
}

/// Whether `header` (the `authorization` value) carries one of `tokens`. Each comparison takes
/// the same time whatever the bytes, so a guess learns nothing from how fast it is refused.
fn authorized(tokens: &[Vec<u8>], header: Option<&[u8]>) -> bool {
    let Some(header) = header else { return false };
    let Some(token) = header
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case(b"bearer "))
        .map(|_| &header[7..])
    else {
        return false;
    };
    // Every token is compared (no early exit), so which one matched does not show either.
    tokens
        .iter()
        .fold(subtle::Choice::from(0), |any, t| {
            any | t.as_slice().ct_eq(token)
        })
        .into()
}

/// The bearer-token check as a tower layer: off (passes everything) when no tokens are set.
#[derive(Debug, Clone, Default)]
pub struct AuthLayer {
    tokens: Option<Arc<[Vec<u8>]>>,
    rejected: Option<IntCounter>,
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Gated<S, AuthLayer>;
    fn layer(&self, inner: S) -> Self::Service {
        Gated {
            inner,
            guard: self.clone(),
        }
    }
}

impl Guard for AuthLayer {
    type Ticket = ();

    fn admit<B>(&self, request: &Request<B>) -> Result<(), tonic::Status> {
        let Some(tokens) = &self.tokens else {
            return Ok(());
        };
        let header = request
            .headers()
            .get(tonic::codegen::http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        if exempt(request.uri().path()) || authorized(tokens, header) {
            return Ok(());
        }
        if let Some(c) = &self.rejected {
            c.inc();
        }
        Err(tonic::Status::unauthenticated(
            "missing or invalid bearer token: send `authorization: Bearer <token>`",
        ))
    }
}

/// How a client reaches a Vigil gRPC server: TLS (with a CA, for mTLS a client certificate)
/// and a bearer token. The same fields are a config section (`[features.security]`) and CLI
/// flags (`--ca-file` …). All unset: plaintext, no token (local runs).
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSecurity {
    /// CA bundle (PEM) the server's certificate must chain to. Set, the endpoint must be
    /// `https://`; unset, an `https://` endpoint is checked against the system roots.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM), for a server that requires mTLS; with `key_file`.
    #[arg(long)]
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Name the server's certificate must carry, when it is not the endpoint's host.
    #[arg(long)]
    pub tls_domain: Option<String>,
    /// File holding the bearer token sent on every call.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

impl ClientSecurity {
    /// An endpoint for `url` with this TLS configuration; `section` prefixes the field names in
    /// errors (e.g. `features.security`).
    pub fn endpoint(&self, section: &str, url: &str) -> Result<Endpoint, ConfigError> {
        let field = |f: &str| format!("{section}.{f}");
        let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|e| {
            ConfigError::invalid(
                field("endpoint"),
                format!("{:?}: {e}", crate::truncated(url, 64)),
            )
        })?;
        let https = url.starts_with("https://");
        let wants_tls = self.ca_file.is_some()
            || self.cert_file.is_some()
            || self.key_file.is_some()
            || self.tls_domain.is_some();
        if wants_tls && !https {
            return Err(ConfigError::invalid(
                field("endpoint"),
                "TLS is configured (ca_file, cert_file, key_file or tls_domain) but the endpoint is not https://",
            ));
        }
        if !https {
            return Ok(endpoint);
        }
        let mut tls = ClientTlsConfig::new();
        tls = match &self.ca_file {
            Some(ca) => tls.ca_certificate(Certificate::from_pem(read_pem(&field("ca_file"), ca)?)),
            None => tls.with_native_roots(),
        };
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(
                    read_pem(&field("cert_file"), cert)?,
                    read_pem(&field("key_file"), key)?,
                ));
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(ConfigError::invalid(
                    field("key_file"),
                    "cert_file is set without key_file",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    field("cert_file"),
                    "key_file is set without cert_file",
                ));
            }
        }
        if let Some(domain) = &self.tls_domain {
            tls = tls.domain_name(domain.clone());
        }
        endpoint
            .tls_config(tls)
            .map_err(|e| ConfigError::invalid(field("ca_file"), format!("TLS configuration: {e}")))
    }

    /// The interceptor that sends the token (none when `token_file` is unset).
    pub fn bearer(&self, section: &str) -> Result<Bearer, ConfigError> {
        let Some(path) = &self.token_file else {
            return Ok(Bearer(None));
        };
        let field = format!("{section}.token_file");
        let token = read_secret(&field, path)?;
        let value = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| ConfigError::invalid(&field, "the token is not a valid header value"))?;
        Ok(Bearer(Some(value)))
    }

    /// A lazily connecting channel to `url`, with the token on every call.
    pub fn channel_lazy(
        &self,
        section: &str,
        url: &str,
        configure: impl FnOnce(Endpoint) -> Endpoint,
    ) -> Result<SecureChannel, ConfigError> {
        let channel = configure(self.endpoint(section, url)?).connect_lazy();
        Ok(InterceptedService::new(channel, self.bearer(section)?))
    }
}

/// Adds `authorization: Bearer <token>` to every request, when a token is set.
#[derive(Debug, Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    /// Sends no token.
    pub fn none() -> Bearer {
        Bearer(None)
    }
}

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel whose calls carry the client's token.
pub type SecureChannel = InterceptedService<Channel, Bearer>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_pki::Pki;

    #[test]
    fn only_a_listed_token_with_the_bearer_scheme_passes() {
        let tokens = vec![b"0123456789abcdef".to_vec(), b"fedcba9876543210xx".to_vec()];
        assert!(authorized(&tokens, Some(b"Bearer 0123456789abcdef")));
        assert!(authorized(&tokens, Some(b"bearer fedcba9876543210xx")));
        for bad in [
            &b"Bearer 0123456789abcde"[..],
            b"Bearer 0123456789abcdefg",
            b"Basic 0123456789abcdef",
            b"0123456789abcdef",
            b"Bearer ",
            b"",
        ] {
            assert!(
                !authorized(&tokens, Some(bad)),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(!authorized(&tokens, None));
    }

    #[test]
    fn token_files_are_checked_and_never_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(
            &file,
            "# rotation: old, new\n0123456789abcdef\n\nfedcba9876543210\n",
        )
        .unwrap();
        assert_eq!(read_tokens("f", &file).unwrap().len(), 2);
        std::fs::write(&file, "short-secret\n").unwrap();
        let err = read_tokens("server.auth.tokens_file", &file)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("server.auth.tokens_file") && err.contains("line 1"),
            "{err}"
        );
        assert!(!err.contains("short-secret"), "the token leaked: {err}");
        std::fs::write(&file, "0123456789 abcdef\n").unwrap();
        let err = read_tokens("f", &file).unwrap_err().to_string();
        assert!(
            err.contains("visible ASCII") && !err.contains("abcdef"),
            "{err}"
        );
        std::fs::write(&file, "# nothing\n").unwrap();
        assert!(
            read_tokens("f", &file)
                .unwrap_err()
                .to_string()
                .contains("no token")
        );
        let missing = dir.path().join("absent");
        let err = read_tokens("f", &missing).unwrap_err().to_string();
        assert!(
            err.contains("cannot read") && err.contains("absent"),
            "{err}"
        );
    }

    #[test]
    fn client_tls_needs_https_and_both_halves_of_an_identity() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let sec = ClientSecurity {
            ca_file: Some(ca.clone()),
            ..ClientSecurity::default()
        };
        let err = sec
            .endpoint("features.security", "http://h:1")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("features.security.endpoint") && err.contains("https"),
            "{err}"
        );
        let err = sec
            .endpoint("features.security", "https://h:1")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("features.security.ca_file") && err.contains("not PEM"),
            "{err}"
        );
        let sec = ClientSecurity {
            cert_file: Some(ca),
            ..ClientSecurity::default()
        };
        let err = sec.endpoint("s", "https://h:1").unwrap_err().to_string();
        assert!(err.contains("s.key_file"), "{err}");
        // Nothing configured: plaintext, no token.
        let plain = ClientSecurity::default();
        assert!(plain.endpoint("s", "http://h:1").is_ok());
        assert!(plain.bearer("s").unwrap().0.is_none());
    }

    /// The health status and the reflection outcome (its first answer) for `client`.
    async fn probe(
        security: &ClientSecurity,
        url: &str,
    ) -> Result<(i32, Result<(), tonic::Code>), String> {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_client::HealthClient;
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        let endpoint = security
            .endpoint("client", url)
            .map_err(|e| e.to_string())?;
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("connect: {e:?}"))?;
        let bearer = security.bearer("client").map_err(|e| e.to_string())?;
        let mut health = HealthClient::with_interceptor(channel.clone(), bearer.clone());
        let status = health
            .check(HealthCheckRequest::default())
            .await
            .map_err(|s| format!("health: {s}"))?
            .into_inner()
            .status;
        let mut reflection = ServerReflectionClient::with_interceptor(channel, bearer);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let listed = match reflection
            .server_reflection_info(tokio_stream::once(request))
            .await
        {
            Ok(mut stream) => match stream.get_mut().message().await {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err(tonic::Code::Unknown),
                Err(s) => Err(s.code()),
            },
            Err(s) => Err(s.code()),
        };
        Ok((status, listed))
    }

    /// A real server on TLS with client certificates and tokens: only a client with the CA,
    /// a certificate that CA signed and a listed token gets past health checks; health needs
    /// no token; every refusal is counted.
    #[tokio::test]
    async fn tls_mtls_and_tokens_guard_a_real_server() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        let pki = Pki::new(&path("pki"));
        let (server_cert, server_key) = pki.issue("server", "localhost");
        let (client_cert, client_key) = pki.issue("client", "vigil-inference");
        let rogue = Pki::new(&path("rogue"));
        let (rogue_cert, rogue_key) = rogue.issue("client", "intruder");
        let tokens = path("tokens");
        std::fs::write(&tokens, "old-token-0123456789\nnew-token-0123456789\n").unwrap();
        let (good_token, bad_token) = (path("good"), path("bad"));
        std::fs::write(&good_token, "new-token-0123456789\n").unwrap();
        std::fs::write(&bad_token, "new-token-0123456788\n").unwrap();

        let rejected = IntCounter::new("rejected", "test").unwrap();
        let security = ServerSecurity::load(
            Some(&ServerTls {
                cert_file: server_cert,
                key_file: server_key,
                client_ca_file: Some(pki.ca_file()),
            }),
            Some(&ServerAuth {
                tokens_file: tokens,
            }),
            Some(rejected.clone()),
        )
        .unwrap();
        assert!(security.tls() && security.mtls() && security.token_auth());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cfg = crate::ServerConfig::for_test(listener.local_addr().unwrap());
        let readiness = crate::admin::Readiness::default();
        let stop = tokio_util::sync::CancellationToken::new();
        let server = {
            let (readiness, stop) = (readiness.clone(), stop.clone());
            tokio::spawn(async move {
                crate::grpc::serve_service(
                    crate::launch::GrpcListener::new(listener, 16).with_security(security),
                    &cfg,
                    tonic::service::RoutesBuilder::default(),
                    &["vigil.v1.Test"],
                    &readiness,
                    true,
                    stop,
                )
                .await
            })
        };
        let https = format!("https://localhost:{port}");
        let trusted = ClientSecurity {
            ca_file: Some(pki.ca_file()),
            cert_file: Some(client_cert.clone()),
            key_file: Some(client_key.clone()),
            ..ClientSecurity::default()
        };
        let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;

        // Certificate and token: health and reflection both answer.
        let full = ClientSecurity {
            token_file: Some(good_token.clone()),
            ..trusted.clone()
        };
        assert_eq!(probe(&full, &https).await.unwrap(), (serving, Ok(())));
        // Certificate without a token: health answers (probes), reflection is refused.
        assert_eq!(
            probe(&trusted, &https).await.unwrap(),
            (serving, Err(tonic::Code::Unauthenticated))
        );
        // A token one byte off is refused the same way.
        let wrong = ClientSecurity {
            token_file: Some(bad_token),
            ..trusted.clone()
        };
        assert_eq!(
            probe(&wrong, &https).await.unwrap(),
            (serving, Err(tonic::Code::Unauthenticated))
        );
        assert_eq!(rejected.get(), 2, "each refusal is counted");
        // No client certificate, or one from another CA: the handshake fails.
        let anonymous = ClientSecurity {
            ca_file: Some(pki.ca_file()),
            token_file: Some(good_token.clone()),
            ..ClientSecurity::default()
        };
        assert!(probe(&anonymous, &https).await.is_err());
        let intruder = ClientSecurity {
            cert_file: Some(rogue_cert),
            key_file: Some(rogue_key),
            ..full.clone()
        };
        assert!(probe(&intruder, &https).await.is_err());
        // A client that does not trust the server's CA refuses it.
        let distrustful = ClientSecurity {
            ca_file: Some(rogue.ca_file()),
            ..full.clone()
        };
        assert!(probe(&distrustful, &https).await.is_err());
        // Plaintext to a TLS port gets nothing.
        let plain = ClientSecurity {
            token_file: Some(good_token),
            ..ClientSecurity::default()
        };
        assert!(
            probe(&plain, &format!("http://localhost:{port}"))
                .await
                .is_err()
        );
        stop.cancel();
        server.await.unwrap().unwrap();
    }
}
