//! The issuer's HTTPS server. Every path prefix is an issuer of its own
//! (`/{tenant}/v2.0` mimics Entra v2), all sharing one JWKS, as Entra's
//! tenants share Microsoft's signing keys. The authorization-code flow
//! (its authorization endpoint, and the token endpoint's grant) is
//! [`super::code`]'s.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::code::{Grant, authorize, redeem};
use super::{SigningKey, TokenBuilder};
use crate::TestPki;
use crate::pki::HTTP11;

const DISCOVERY: &str = "/.well-known/openid-configuration";
const JWKS: &str = "/discovery/keys";
const TOKEN: &str = "/oauth2/v2.0/token";
const AUTHORIZE: &str = "/oauth2/v2.0/authorize";

pub(super) type Resp = Response<Full<Bytes>>;

/// Serves until dropped, on `https://{host}:{port}` with a certificate for
/// `host` from its own test CA.
#[derive(Debug)]
pub struct OidcIssuer {
    addr: SocketAddr,
    pki: TestPki,
    state: Arc<State>,
    _tasks: JoinSet<()>,
}

/// What the server shows and what it has seen, shared with every connection.
#[derive(Debug)]
pub(super) struct State {
    /// `https://{host}:{port}`, the origin of every issuer it serves.
    pub(super) origin: String,
    /// Published keys, oldest first; the token endpoint signs with the last.
    pub(super) keys: Mutex<Vec<SigningKey>>,
    jwks_failing: AtomicBool,
    jwks_fetches: AtomicU64,
    discovery_fetches: AtomicU64,
    last_assertion: Mutex<Option<String>>,
    /// Base64 SHA-256 of the server key's SubjectPublicKeyInfo.
    pin: String,
    /// Registered clients: id → secret.
    pub(super) clients: Mutex<HashMap<String, String>>,
    /// The claims of whoever the authorization endpoint signs in.
    pub(super) user: Mutex<Option<Value>>,
    /// Codes issued and not redeemed yet.
    pub(super) codes: Mutex<HashMap<String, Grant>>,
}

impl OidcIssuer {
    /// Listens on a free port of 127.0.0.1 as `host` (`localhost`, or a name
    /// the test resolves there), with no keys published yet.
    pub async fn start(host: &str) -> Self {
        let pki = TestPki::new("OIDC issuer test CA");
        let (config, pin) = pki.pinned_server_config(&[host], &[HTTP11]);
        let acceptor = TlsAcceptor::from(config);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            origin: format!("https://{host}:{}", addr.port()),
            keys: Mutex::default(),
            jwks_failing: AtomicBool::new(false),
            jwks_fetches: AtomicU64::new(0),
            discovery_fetches: AtomicU64::new(0),
            last_assertion: Mutex::default(),
            pin,
            clients: Mutex::default(),
            user: Mutex::default(),
            codes: Mutex::default(),
        });
        let mut tasks = JoinSet::new();
        tasks.spawn(serve(listener, acceptor, state.clone()));
        Self {
            addr,
            pki,
            state,
            _tasks: tasks,
        }
    }

    /// `https://{host}:{port}`, no trailing slash.
    pub fn url(&self) -> String {
        self.state.origin.clone()
    }

    /// The issuer whose discovery document is at
    /// `{prefix}/.well-known/openid-configuration` (`prefix` is empty or
    /// starts with `/`).
    pub fn issuer(&self, prefix: &str) -> String {
        format!("{}{prefix}", self.state.origin)
    }

    /// The Entra v2-shaped issuer of [`super::TENANT_ID`]:
    /// `https://{host}:{port}/{TENANT_ID}/v2.0`.
    pub fn entra_issuer(&self) -> String {
        self.issuer(&format!("/{}/v2.0", super::TENANT_ID))
    }

    /// Where to connect (the URL's host need not resolve).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The CA that issued the server's certificate.
    pub fn ca_pem(&self) -> &str {
        self.pki.ca_pem()
    }

    /// Writes the CA as `ca.pem` in `dir`.
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        self.pki.write_ca(dir)
    }

    /// An HTTP/1.1 client config that trusts the issuer's CA only.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        self.pki.client_config(&[HTTP11])
    }

    /// Adds `key` to the JWKS (replacing any key with its kid); it becomes the
    /// key the token endpoint signs with.
    pub fn publish(&self, key: &SigningKey) {
        let mut keys = self.state.keys.lock().unwrap();
        keys.retain(|k| k.kid() != key.kid());
        keys.push(key.clone());
    }

    /// Removes the key `kid` from the JWKS (a no-op if it is not there).
    pub fn unpublish(&self, kid: &str) {
        self.state.keys.lock().unwrap().retain(|k| k.kid() != kid);
    }

    /// While set, JWKS requests get a 500 (discovery still answers), so a
    /// test can check that a validator keeps its last good keys.
    pub fn set_jwks_failing(&self, failing: bool) {
        self.state.jwks_failing.store(failing, Ordering::SeqCst);
    }

    /// JWKS requests so far, failed ones included.
    pub fn jwks_fetches(&self) -> u64 {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Discovery-document requests so far.
    pub fn discovery_fetches(&self) -> u64 {
        self.state.discovery_fetches.load(Ordering::SeqCst)
    }

    /// The server key's pin, for Chromium's
    /// `--ignore-certificate-errors-spki-list` (see
    /// [`crate::TestPki::pinned_server_config`]).
    pub fn spki_pin(&self) -> &str {
        &self.state.pin
    }

    /// Registers a client that may redeem authorization codes.
    pub fn register_client(&self, client_id: &str, secret: &str) {
        let mut clients = self.state.clients.lock().unwrap();
        clients.insert(client_id.to_owned(), secret.to_owned());
    }

    /// From now on, the authorization endpoint signs in as the person
    /// these claims describe (`preferred_username`, `oid`, `groups`, …).
    pub fn sign_in_as(&self, claims: Value) {
        *self.state.user.lock().unwrap() = Some(claims);
    }

    /// The `client_assertion` of the last token request that had one.
    pub fn last_assertion(&self) -> Option<String> {
        self.state.last_assertion.lock().unwrap().clone()
    }
}

async fn serve(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>) {
    // Connections live in this set, so dropping the issuer ends them too.
    let mut conns = JoinSet::new();
    while let Ok((tcp, _)) = listener.accept().await {
        while conns.try_join_next().is_some() {}
        conns.spawn(connection(tcp, acceptor.clone(), state.clone()));
    }
}

async fn connection(tcp: TcpStream, acceptor: TlsAcceptor, state: Arc<State>) {
    // A client that rejects the certificate just goes away.
    let Ok(tls) = acceptor.accept(tcp).await else {
        return;
    };
    let svc = service_fn(move |req| route(req, state.clone()));
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(tls), svc)
        .await;
}

async fn route(req: Request<Incoming>, state: Arc<State>) -> Result<Resp, Infallible> {
    let path = req.uri().path().to_owned();
    let resp = match *req.method() {
        Method::GET if path.ends_with(DISCOVERY) => {
            state.discovery_fetches.fetch_add(1, Ordering::SeqCst);
            discovery(&state, &path[..path.len() - DISCOVERY.len()])
        }
        Method::GET if path.ends_with(JWKS) => {
            state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
            jwks(&state)
        }
        Method::GET if path.ends_with(AUTHORIZE) => {
            let prefix = &path[..path.len() - AUTHORIZE.len()];
            let query = form(req.uri().query().unwrap_or("").as_bytes());
            authorize(&state, prefix, &query)
        }
        Method::POST if path.ends_with(TOKEN) => {
            let prefix = &path[..path.len() - TOKEN.len()];
            let body = req.into_body().collect().await;
            let body = body.map(|b| b.to_bytes()).unwrap_or_default();
            token(&state, prefix, &form(&body))
        }
        _ => json(StatusCode::NOT_FOUND, json!({ "error": "not_found" })),
    };
    Ok(resp)
}

pub(super) fn json(status: StatusCode, v: Value) -> Resp {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json; charset=utf-8")
        .header(CACHE_CONTROL, "no-store, no-cache")
        .body(Full::new(Bytes::from(v.to_string())))
        .unwrap()
}

fn discovery(state: &State, prefix: &str) -> Resp {
    let issuer = format!("{}{prefix}", state.origin);
    json(
        StatusCode::OK,
        json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}{JWKS}"),
            "token_endpoint": format!("{issuer}{TOKEN}"),
            "authorization_endpoint": format!("{issuer}{AUTHORIZE}"),
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "token_endpoint_auth_methods_supported":
                ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        }),
    )
}

fn jwks(state: &State) -> Resp {
    if state.jwks_failing.load(Ordering::SeqCst) {
        return json(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": "server_error" }),
        );
    }
    let keys = state.keys.lock().unwrap();
    let keys: Vec<Value> = keys.iter().map(SigningKey::jwk).collect();
    json(StatusCode::OK, json!({ "keys": keys }))
}

/// Entra's client-credentials grant with a federated credential. The
/// assertion is recorded, not validated: the tests are about what airlock
/// sends and how it uses the answer.
fn token(state: &State, prefix: &str, form: &HashMap<String, String>) -> Resp {
    if form.get("grant_type").map(String::as_str) == Some("authorization_code") {
        return redeem(state, prefix, form);
    }
    for param in ["client_id", "scope", "grant_type", "client_assertion"] {
        if !form.contains_key(param) {
            let msg = format!("The request body must contain the following parameter: '{param}'.");
            return entra_error(StatusCode::BAD_REQUEST, "invalid_request", 900144, &msg);
        }
    }
    if form["grant_type"] != "client_credentials" {
        let msg = "The app requested an unsupported grant type.";
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            msg,
        );
    }
    *state.last_assertion.lock().unwrap() = Some(form["client_assertion"].clone());
    let Some(key) = state.keys.lock().unwrap().last().cloned() else {
        let msg = "No signing key published.";
        return entra_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            50001,
            msg,
        );
    };
    // `api://app/.default` asks for a token whose audience is `api://app`.
    let scope = form["scope"].split(' ').next().unwrap_or_default();
    let audience = scope.strip_suffix("/.default").unwrap_or(scope);
    let client = form["client_id"].as_str();
    // An app-only token: the client is its own subject, with no user claims.
    let claims = json!({
        "azp": client, "appid": client, "oid": client, "sub": client,
        "idtyp": "app", "azpacr": "2",
        "name": null, "upn": null, "scp": null, "groups": null,
    });
    let issuer = format!("{}{prefix}", state.origin);
    let access_token = TokenBuilder::entra(&issuer, audience)
        .claims(claims)
        .sign(&key);
    json(
        StatusCode::OK,
        json!({
            "token_type": "Bearer",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": access_token,
        }),
    )
}

/// An error body shaped like Entra's (`AADSTS…` codes).
pub(super) fn entra_error(status: StatusCode, error: &str, code: u32, msg: &str) -> Resp {
    let trace = "00000000-0000-0000-0000-000000000000";
    json(
        status,
        json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {msg}\r\nTrace ID: {trace}\r\nCorrelation ID: {trace}"
            ),
            "error_codes": [code],
            "trace_id": trace,
            "correlation_id": trace,
        }),
    )
}

/// An `application/x-www-form-urlencoded` body; the first of repeated keys
/// wins.
fn form(body: &[u8]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let mut kv = pair.splitn(2, |&b| b == b'=');
        let k = urldecode(kv.next().unwrap());
        let v = urldecode(kv.next().unwrap_or_default());
        out.entry(k).or_insert(v);
    }
    out
}

fn urldecode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        // from_str_radix alone would also take a sign ("%+1").
        let hex = s
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
        let hex = hex.map(|h| u8::from_str_radix(std::str::from_utf8(h).unwrap(), 16).unwrap());
        match (s[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
