//! Client configs for upstream connections: always verified, against the
//! system roots plus `tls.upstream_roots`. One config per ALPN offer, so
//! session resumption is shared across connections. With them, the route
//! upstream connections take ([`crate::egress`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::TlsError;
use crate::core::lock;
use crate::egress::Route;

#[derive(Debug)]
pub struct UpstreamTls {
    roots: Arc<RootCertStore>,
    configs: Mutex<HashMap<Vec<Vec<u8>>, Arc<ClientConfig>>>,
    route: Arc<Route>,
}

impl UpstreamTls {
    /// System roots (as `rustls-native-certs` finds them, honouring
    /// `SSL_CERT_FILE`/`SSL_CERT_DIR`) plus every certificate in `extra`.
    pub fn new(extra: &[PathBuf]) -> Result<Self, TlsError> {
        let mut roots = system_roots();
        let added = roots.len();
        for path in extra {
            add_pem_roots(&mut roots, path)?;
        }
        if roots.is_empty() {
            tracing::warn!(
                "no trusted roots at all: every intercepted upstream will fail verification"
            );
        }
        tracing::debug!(
            system = added,
            total = roots.len(),
            "upstream trust roots loaded"
        );
        Ok(Self {
            roots: Arc::new(roots),
            configs: Mutex::new(HashMap::new()),
            route: Arc::new(Route::default()),
        })
    }

    /// Upstream connections take `route` (`proxy.upstream_proxy`).
    pub fn with_route(mut self, route: Route) -> Self {
        self.route = Arc::new(route);
        self
    }

    /// How upstream connections are made.
    pub(crate) fn route(&self) -> &Arc<Route> {
        &self.route
    }

    /// The config offering `alpn` (in the client's order) to the upstream.
    pub fn config(&self, alpn: &[Vec<u8>]) -> Result<Arc<ClientConfig>, TlsError> {
        let mut configs = lock(&self.configs);
        if let Some(c) = configs.get(alpn) {
            return Ok(c.clone());
        }
        let mut c = verifying_config(self.roots.clone())?;
        c.alpn_protocols = alpn.to_vec();
        let c = Arc::new(c);
        configs.insert(alpn.to_vec(), c.clone());
        Ok(c)
    }
}

/// The system's roots, as `rustls-native-certs` finds them (honouring
/// `SSL_CERT_FILE`/`SSL_CERT_DIR`).
pub(crate) fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::warn!(error = %e, "skipping unreadable system root certificates");
    }
    let (_, ignored) = roots.add_parsable_certificates(native.certs);
    if ignored > 0 {
        tracing::debug!(ignored, "system root certificates rustls cannot use");
    }
    roots
}

/// Adds every certificate of the PEM file `path` to `roots`; a file with
/// none is an error (a wrong path must not silently trust nothing).
pub(crate) fn add_pem_roots(roots: &mut RootCertStore, path: &Path) -> Result<(), TlsError> {
    let err = |why: String| TlsError::Roots {
        path: path.to_owned(),
        why,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in it".into()));
    }
    for c in certs {
        roots.add(c).map_err(|e| err(e.to_string()))?;
    }
    Ok(())
}

/// A client config verifying servers against `roots`, with airlock's
/// crypto provider and no client certificate.
pub(crate) fn verifying_config(roots: Arc<RootCertStore>) -> Result<ClientConfig, TlsError> {
    Ok(ClientConfig::builder_with_provider(super::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
