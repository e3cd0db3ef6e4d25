//! HTTPS for the console (`console.tls_cert`, `console.tls_key`): the PEM
//! chain and key read at start, served with airlock's TLS provider,
//! HTTP/1.1 only (the event stream is one long response).

use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::ConsoleError;
use crate::config::ConsoleConfig;

/// The server config `console.tls_cert` and `tls_key` make; none without
/// them.
pub(super) fn server_config(c: &ConsoleConfig) -> Result<Option<Arc<ServerConfig>>, ConsoleError> {
    let (Some(cert), Some(key)) = (&c.tls_cert, &c.tls_key) else {
        return Ok(None);
    };
    let bad = |path: &std::path::Path, why: String| ConsoleError::Tls {
        path: path.to_owned(),
        why,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(bad(cert, "no certificate in the file".into()));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private))
        .map_err(|e| bad(cert, e.to_string()))?;
    config.alpn_protocols = vec![crate::tls::ALPN_HTTP11.to_vec()];
    Ok(Some(Arc::new(config)))
}
