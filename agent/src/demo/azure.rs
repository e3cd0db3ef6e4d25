//! Loopback stand-ins for the Azure endpoints the demo's agent calls, shaped
//! like the real APIs (paths, `api-version`, JSON field names, status codes,
//! error bodies): Entra ID, Resource Manager, Blob Storage, Key Vault, a
//! Functions host and an AKS API server. One HTTPS listener serves them
//! all, routed by `Host`, under a demo CA airlock is told to trust.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::entra::{Signer, TENANT};

pub(super) const SUBSCRIPTION: &str = "0b1f6471-1bf0-4dda-aec3-cb9272f09590";
pub(super) const ARM: &str = "management.azure.com";
pub(super) const ENTRA: &str = "login.microsoftonline.com";
pub(super) const BLOB: &str = "stcopilotdemo.blob.core.windows.net";
pub(super) const VAULT: &str = "kv-copilot-demo.vault.azure.net";
pub(super) const FUNCTIONS: &str = "func-copilot-demo.azurewebsites.net";
pub(super) const AKS: &str = "aks-copilot-demo-dns-4f2a.hcp.westeurope.azmk8s.io";
pub(super) const HOSTS: &[&str] = &[ARM, ENTRA, BLOB, VAULT, FUNCTIONS, AKS];

/// The secrets the fake hands out: fresh random values each run, shaped
/// like Azure's (64-byte storage keys as 88 base64 characters, function
/// keys as 56), so the demo shows masking of real-looking secrets.
pub(super) struct Secrets {
    pub storage_keys: [String; 2],
    pub function_key: String,
}

pub(super) static SECRETS: std::sync::LazyLock<Secrets> = std::sync::LazyLock::new(|| {
    use base64::Engine;
    let random = |n: usize| {
        let mut b = vec![0u8; n];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
        b
    };
    let std64 = base64::engine::general_purpose::STANDARD;
    let url64 = base64::engine::general_purpose::URL_SAFE;
    Secrets {
        storage_keys: [std64.encode(random(64)), std64.encode(random(64))],
        function_key: url64.encode(random(40)),
    }
});

/// The Key Vault secret and the Kubernetes Secret's (base64) password the
/// fake hands out — what the agent must never see.
pub(super) const VAULT_SECRET: &str = "Sx9!vQ2#mL7$wP4@kR8";
pub(super) const K8S_SECRET: &str = "aHVudGVyMi1wcm9kLTk4NzY=";

/// Largest request body the fake reads.
const MAX_BODY: usize = 1 << 20;

/// The running fake.
#[derive(Debug)]
pub(super) struct Azure {
    pub addr: SocketAddr,
    /// The demo CA's PEM file, for airlock's `tls.upstream_roots`.
    pub ca: PathBuf,
    pub signer: Arc<Signer>,
}

impl Azure {
    /// Where airlock fetches the demo issuer's keys (by IP: airlock's own
    /// connections are not captured, and the demo has no DNS).
    pub(super) fn jwks_uri(&self) -> String {
        format!(
            "https://127.0.0.1:{}/{TENANT}/discovery/v2.0/keys",
            self.addr.port()
        )
    }
}

/// Binds 127.0.0.1 on a free port (and the same port on `also`: where a
/// container's network reaches the host) and serves until the task set is
/// dropped.
pub(super) async fn start(
    tasks: &mut JoinSet<()>,
    dir: &Path,
    also: Option<std::net::IpAddr>,
) -> Result<Azure, String> {
    let (acceptor, ca_pem) = tls().map_err(|e| format!("demo certificates: {e}"))?;
    let ca = dir.join("demo-azure-ca.pem");
    std::fs::write(&ca, ca_pem).map_err(|e| format!("{}: {e}", ca.display()))?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let signer = Arc::new(Signer::new()?);
    if let Some(ip) = also {
        let other = TcpListener::bind(SocketAddr::new(ip, addr.port()))
            .await
            .map_err(|e| format!("{ip}:{}: {e}", addr.port()))?;
        tasks.spawn(serve(other, acceptor.clone(), signer.clone()));
    }
    tasks.spawn(serve(listener, acceptor, signer.clone()));
    Ok(Azure { addr, ca, signer })
}

async fn serve(listener: TcpListener, acceptor: TlsAcceptor, signer: Arc<Signer>) {
    let mut conns = JoinSet::new();
    while let Ok((s, _)) = listener.accept().await {
        while conns.try_join_next().is_some() {}
        let (acceptor, signer) = (acceptor.clone(), signer.clone());
        conns.spawn(async move {
            let Ok(tls) = acceptor.accept(s).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| {
                let signer = signer.clone();
                async move { Ok::<_, Infallible>(route(req, &signer).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades()
                .await;
        });
    }
}

/// A throwaway CA and one leaf for every simulated host (and 127.0.0.1,
/// where airlock fetches keys), HTTP/1.1.
fn tls() -> Result<(TlsAcceptor, String), Box<dyn std::error::Error>> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "airlock demo: simulated Azure CA",
    );
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate()?;
    let mut names: Vec<String> = HOSTS.iter().map(|h| (*h).to_owned()).collect();
    names.push("127.0.0.1".into());
    let leaf = CertificateParams::new(names)?.signed_by(&leaf_key, &issuer)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca_cert.der().clone()], key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), ca_cert.pem()))
}

type Resp = Response<Full<Bytes>>;

fn json(status: StatusCode, v: &Value) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// ARM's error shape.
fn arm_error(status: StatusCode, code: &str, message: &str) -> Resp {
    json(
        status,
        &json!({ "error": { "code": code, "message": message } }),
    )
}

async fn route(mut req: Request<Incoming>, signer: &Signer) -> Resp {
    let authority = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let host = authority
        .rsplit_once(':')
        .map_or(authority.as_str(), |(n, _)| n)
        .to_owned();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    if host == AKS && path.ends_with("/exec") {
        return exec(&mut req);
    }
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    match host.as_str() {
        "127.0.0.1" => {
            let base = format!("https://{authority}");
            match sign_in(&method, &path, &query, &body, signer, &base) {
                Some(resp) => resp,
                None => entra(&method, &path, &body, signer),
            }
        }
        ENTRA => entra(&method, &path, &body, signer),
        ARM => arm(&method, &path),
        BLOB => blob(&method, &path, &query),
        VAULT => vault(&method, &path),
        FUNCTIONS => functions(&method, &path),
        AKS => kubernetes(&method, &path),
        _ => arm_error(StatusCode::NOT_FOUND, "UnknownHost", &host),
    }
}

/// Entra ID reached by address: people signing in to the fleet console
/// (`signin`); `None` for what is the same as by name (keys, tokens for
/// apps).
fn sign_in(
    method: &Method,
    path: &str,
    query: &str,
    body: &[u8],
    signer: &Signer,
    base: &str,
) -> Option<Resp> {
    let prefix = format!("/{TENANT}");
    let refused = |why: String| {
        json(
            StatusCode::BAD_REQUEST,
            &json!({ "error": "invalid_grant", "error_description": why }),
        )
    };
    Some(match (method, path.strip_prefix(&prefix)?) {
        (&Method::GET, "/v2.0/.well-known/openid-configuration") => {
            json(StatusCode::OK, &super::signin::discovery(base))
        }
        (&Method::GET, "/oauth2/v2.0/authorize") => {
            match super::signin::authorize(&signer.codes, query) {
                Ok(to) => {
                    let mut r = Response::new(Full::new(Bytes::new()));
                    *r.status_mut() = StatusCode::FOUND;
                    if let Ok(v) = http::HeaderValue::from_str(&to) {
                        r.headers_mut().insert(http::header::LOCATION, v);
                    }
                    r
                }
                Err(why) => refused(why),
            }
        }
        (&Method::POST, "/oauth2/v2.0/token")
            if String::from_utf8_lossy(body)
                .split('&')
                .any(|kv| kv == "grant_type=authorization_code") =>
        {
            let form = String::from_utf8_lossy(body);
            match super::signin::redeem(&signer.codes, signer, base, &form) {
                Ok(answer) => json(StatusCode::OK, &answer),
                Err(why) => refused(why),
            }
        }
        _ => return None,
    })
}

fn entra(method: &Method, path: &str, body: &[u8], signer: &Signer) -> Resp {
    let prefix = format!("/{TENANT}");
    match (method, path.strip_prefix(&prefix)) {
        (&Method::GET, Some("/v2.0/.well-known/openid-configuration")) => json(
            StatusCode::OK,
            &json!({
                "issuer": Signer::issuer(),
                "jwks_uri": format!("https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys"),
                "token_endpoint": format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"),
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            }),
        ),
        (&Method::GET, Some("/discovery/v2.0/keys")) => json(StatusCode::OK, &signer.jwks()),
        (&Method::POST, Some("/oauth2/v2.0/token")) => {
            let form = String::from_utf8_lossy(body);
            let scope = form
                .split('&')
                .find_map(|p| p.strip_prefix("scope="))
                .map(|s| s.replace("%2F", "/").replace("%3A", ":"))
                .unwrap_or_default();
            let audience = scope.trim_end_matches("/.default");
            if audience.is_empty() {
                return json(
                    StatusCode::BAD_REQUEST,
                    &json!({ "error": "invalid_request", "error_codes": [900144],
                             "error_description": "AADSTS900144: The request body must contain the following parameter: 'scope'." }),
                );
            }
            json(
                StatusCode::OK,
                &json!({ "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                         "access_token": signer.token(audience, 0, Duration::from_secs(3600)) }),
            )
        }
        _ => json(
            StatusCode::NOT_FOUND,
            &json!({ "error": "invalid_request", "error_description": "AADSTS90002: not found" }),
        ),
    }
}

fn arm(method: &Method, path: &str) -> Resp {
    let sub = format!("/subscriptions/{SUBSCRIPTION}");
    let Some(rest) = path.strip_prefix(&sub) else {
        return arm_error(StatusCode::NOT_FOUND, "SubscriptionNotFound", path);
    };
    let rg_path = "/resourceGroups/rg-copilot-demo";
    let account =
        format!("{sub}{rg_path}/providers/Microsoft.Storage/storageAccounts/stcopilotdemo");
    match (method, rest.to_ascii_lowercase().as_str()) {
        (&Method::GET, "/resourcegroups") => json(
            StatusCode::OK,
            &json!({ "value": [
                { "id": format!("{sub}{rg_path}"), "name": "rg-copilot-demo",
                  "type": "Microsoft.Resources/resourceGroups", "location": "westeurope",
                  "properties": { "provisioningState": "Succeeded" } },
                { "id": format!("{sub}/resourceGroups/rg-legacy"), "name": "rg-legacy",
                  "type": "Microsoft.Resources/resourceGroups", "location": "westeurope",
                  "properties": { "provisioningState": "Succeeded" } }
            ]}),
        ),
        (&Method::POST, p) if p.ends_with("/storageaccounts/stcopilotdemo/listkeys") => json(
            StatusCode::OK,
            &json!({ "keys": [
                { "creationTime": "2026-10-01T08:00:00.0000000Z", "keyName": "key1", "permissions": "FULL",
                  "value": SECRETS.storage_keys[0] },
                { "creationTime": "2026-10-01T08:00:00.0000000Z", "keyName": "key2", "permissions": "FULL",
                  "value": SECRETS.storage_keys[1] }
            ], "id": account }),
        ),
        (&Method::DELETE, p) if p.starts_with("/resourcegroups/") => {
            let mut r = json(StatusCode::ACCEPTED, &json!({}));
            r.headers_mut().insert(
                http::header::LOCATION,
                http::HeaderValue::from_static("https://management.azure.com/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/operationresults/eyJqb2JJZCI6IlJFU09VUkNFR1JPVVBERUxFVElPTkpPQiJ9?api-version=2021-04-01"),
            );
            r
        }
        _ => arm_error(
            StatusCode::NOT_FOUND,
            "InvalidResourceType",
            &format!("The resource type could not be found for '{path}'."),
        ),
    }
}

fn blob(method: &Method, path: &str, query: &str) -> Resp {
    let xml = |status, body: &str| {
        let mut r = Response::new(Full::new(Bytes::from(body.to_owned())));
        *r.status_mut() = status;
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/xml"),
        );
        r.headers_mut()
            .insert("x-ms-version", http::HeaderValue::from_static("2023-11-03"));
        r
    };
    match *method {
        Method::GET if query.contains("comp=list") => xml(
            StatusCode::OK,
            r#"<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="https://stcopilotdemo.blob.core.windows.net/" ContainerName="deploy"><Blobs><Blob><Name>app.zip</Name><Properties><Content-Length>48213</Content-Length><Content-Type>application/zip</Content-Type><Etag>0x8DCF1A2B3C4D5E6</Etag></Properties></Blob><Blob><Name>infra/main.bicep</Name><Properties><Content-Length>2210</Content-Length><Content-Type>text/plain</Content-Type><Etag>0x8DCF1A2B3C4D5E7</Etag></Properties></Blob></Blobs><NextMarker /></EnumerationResults>"#,
        ),
        Method::PUT => xml(StatusCode::CREATED, ""),
        _ => xml(
            StatusCode::NOT_FOUND,
            &format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>BlobNotFound</Code><Message>{path}</Message></Error>"
            ),
        ),
    }
}

fn vault(method: &Method, path: &str) -> Resp {
    match (method, path.trim_end_matches('/')) {
        (&Method::GET, "/secrets/sql-admin-password") => json(
            StatusCode::OK,
            &json!({ "value": VAULT_SECRET,
                     "id": format!("https://{VAULT}/secrets/sql-admin-password/6a1d4e7f2b8c4d9e"),
                     "attributes": { "enabled": true, "created": 1764000000, "updated": 1764000000, "recoveryLevel": "Recoverable+Purgeable" } }),
        ),
        _ => json(
            StatusCode::NOT_FOUND,
            &json!({ "error": { "code": "SecretNotFound", "message": format!("A secret with (name/id) {path} was not found in this key vault.") } }),
        ),
    }
}

fn functions(method: &Method, path: &str) -> Resp {
    match (method, path) {
        (&Method::GET, "/admin/host/keys") => json(
            StatusCode::OK,
            &json!({ "keys": [{ "name": "default", "value": SECRETS.function_key }],
                     "links": [{ "rel": "self", "href": format!("https://{FUNCTIONS}/admin/host/keys") }] }),
        ),
        _ => json(StatusCode::NOT_FOUND, &json!({ "message": "Not Found" })),
    }
}

fn kubernetes(method: &Method, path: &str) -> Resp {
    match (method, path) {
        (&Method::GET, "/api/v1/namespaces/payments/secrets/db-credentials") => json(
            StatusCode::OK,
            &json!({ "kind": "Secret", "apiVersion": "v1", "type": "Opaque",
                     "metadata": { "name": "db-credentials", "namespace": "payments", "uid": "9c1e4f2a-7b3d-4e8f-a6c5-1d2e3f4a5b6c", "resourceVersion": "48213" },
                     "data": { "username": "cGF5bWVudHM=", "password": K8S_SECRET } }),
        ),
        _ => json(
            StatusCode::NOT_FOUND,
            &json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": format!("{path} not found") }),
        ),
    }
}

/// `kubectl exec`: a 101 to a stream protocol, then a greeting.
fn exec(req: &mut Request<Incoming>) -> Resp {
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        if let Ok(io) = upgrade.await {
            use tokio::io::AsyncWriteExt;
            let mut io = TokioIo::new(io);
            let _ = io.write_all(b"\x01root@payments-api-7d9f:/# ").await;
            let _ = io.shutdown().await;
        }
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("Upgrade"),
    );
    h.insert(
        http::header::UPGRADE,
        http::HeaderValue::from_static("SPDY/3.1"),
    );
    h.insert(
        "X-Stream-Protocol-Version",
        http::HeaderValue::from_static("v4.channel.k8s.io"),
    );
    r
}
