//! The request as the server will read it, checked before anything judges
//! it: one host, the one the connection was opened for (else 421); a path
//! with nothing a server resolves differently from a rule (else 400); and
//! no credential given twice two ways (else 400). A hostile client chooses
//! every byte of a request; anything here that two readers could read two
//! ways is refused rather than guessed at.

use std::net::IpAddr;

use http::{HeaderMap, Request, StatusCode, header};

use crate::core::addrs::Endpoint;

/// Why a request is refused before it is judged.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Misshapen {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Misshapen {
    fn new(status: StatusCode, code: &'static str, message: String) -> Self {
        Self {
            status,
            code,
            message,
        }
    }
}

/// Query parameters of an Azure Storage shared access signature: given
/// twice with different values, the server and airlock could read two
/// different grants.
const SAS_PARAMS: &[&str] = &[
    "sig", "sv", "ss", "srt", "sp", "st", "se", "sip", "spr", "sr", "si", "sdd", "skoid", "sktid",
    "skt", "ske", "sks", "skv", "saoid", "suoid", "scid", "ses",
];

/// Query parameters of a metadata service's token request: which identity,
/// for which audience. Given twice, the service and airlock could read two
/// different identities.
const IMDS_PARAMS: &[&str] = &[
    "client_id",
    "object_id",
    "principal_id",
    "msi_res_id",
    "mi_res_id",
    "resource",
];

/// Checks `req`, sent on a connection to `dst` whose ClientHello named
/// `sni`.
pub(super) fn check<B>(
    req: &Request<B>,
    sni: Option<&str>,
    dst: Endpoint,
) -> Result<(), Misshapen> {
    host(req, sni, dst)?;
    path(req.uri().path())?;
    credentials(req.headers(), req.uri().query())
}

/// Every name the request gives for its host (`:authority` or the
/// absolute URI, and `Host`) must be the one the connection was opened for:
/// the TLS server name, or without one the destination's own address.
/// The upstream is dialled for that name, so a request naming another host
/// would be judged as one service and served as another.
fn host<B>(req: &Request<B>, sni: Option<&str>, dst: Endpoint) -> Result<(), Misshapen> {
    let hosts = req.headers().get_all(header::HOST);
    if hosts.iter().count() > 1 {
        return Err(Misshapen::new(
            StatusCode::BAD_REQUEST,
            "AmbiguousHost",
            "more than one Host header".into(),
        ));
    }
    // An IP literal in SNI names no server (RFC 6066).
    let sni = sni.filter(|s| s.parse::<IpAddr>().is_err());
    let named = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .into_iter()
        .chain(
            hosts
                .iter()
                .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned()),
        );
    for given in named {
        if !names_the_connection(&given, sni, dst) {
            let expected = sni.map_or_else(|| dst.ip.to_string(), str::to_owned);
            return Err(Misshapen::new(
                StatusCode::MISDIRECTED_REQUEST,
                "MisdirectedRequest",
                format!(
                    "the request names host {given:?}, but its connection was opened for {expected:?}: send it on a connection to that host"
                ),
            ));
        }
    }
    Ok(())
}

/// `authority` (`host[:port]`, userinfo not allowed) names the server name
/// `sni`, or without one the destination address; a port, if given, is
/// the destination's.
fn names_the_connection(authority: &str, sni: Option<&str>, dst: Endpoint) -> bool {
    let authority = authority.trim();
    if authority.contains('@') {
        return false;
    }
    let (name, port) = split_port(authority);
    if port.is_some_and(|p| p != dst.port) {
        return false;
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    match sni {
        Some(sni) => name.eq_ignore_ascii_case(sni.strip_suffix('.').unwrap_or(sni)),
        None => name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip == dst.ip),
    }
}

/// `host:port` → (host, Some(port)); `[v6]:port` likewise; anything that
/// does not end in a numeric port → (whole, None). A non-numeric "port"
/// stays part of the name, which then matches nothing.
fn split_port(authority: &str) -> (&str, Option<u16>) {
    if let Some((host, port)) = authority.rsplit_once(':')
        && (!host.contains(':') || host.ends_with(']'))
        && let Ok(port) = port.parse::<u16>()
    {
        return (host, Some(port));
    }
    (authority, None)
}

/// A path a server would resolve into another one: `.` or `..` segments
/// (also spelled with escapes of unreserved characters, which servers
/// decode), or an encoded `/`, `\` or NUL, or a literal `\` (a separator to
/// Windows servers). Rewriting it would break the request's signature
/// (SharedKey signs the path as sent), so it is refused; real clients
/// normalise paths before they send them.
pub(crate) fn path(raw: &str) -> Result<(), Misshapen> {
    let refuse = |why: &str| {
        Err(Misshapen::new(
            StatusCode::BAD_REQUEST,
            "NonCanonicalPath",
            format!("the path {raw:?} {why}; send it normalised"),
        ))
    };
    let lower = raw.to_ascii_lowercase();
    if ["%2f", "%5c", "%00"].iter().any(|e| lower.contains(e)) {
        return refuse("encodes a '/', '\\' or NUL");
    }
    if raw.contains('\\') {
        return refuse("contains '\\'");
    }
    let decoded = crate::operation::normalize_path(raw);
    if decoded.split('/').any(|s| s == "." || s == "..") {
        return refuse("has a '.' or '..' segment");
    }
    // `%4%62` decodes to `%4b`, which a server decoding twice reads as
    // `K`: the path rules see must be the one every reader sees.
    if crate::operation::normalize_path(&decoded) != decoded {
        return refuse("has an escape that decodes into another escape");
    }
    Ok(())
}

/// One `Authorization`, and one value for each SAS or managed-identity
/// parameter.
fn credentials(headers: &HeaderMap, query: Option<&str>) -> Result<(), Misshapen> {
    let refuse = |why: String| {
        Err(Misshapen::new(
            StatusCode::BAD_REQUEST,
            "AmbiguousCredential",
            why,
        ))
    };
    if headers.get_all(header::AUTHORIZATION).iter().count() > 1 {
        return refuse("more than one Authorization header".into());
    }
    let Some(query) = query else {
        return Ok(());
    };
    let mut seen: Vec<(String, String)> = Vec::new();
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        // Names compared as a lenient server would read them.
        let k = crate::core::percent_decode(k).to_ascii_lowercase();
        if !SAS_PARAMS.contains(&k.as_str()) && !IMDS_PARAMS.contains(&k.as_str()) {
            continue;
        }
        let v = crate::core::percent_decode(v);
        match seen.iter().find(|(name, _)| *name == k) {
            Some((_, first)) if *first != v => {
                return refuse(format!(
                    "the query gives the parameter {k:?} twice, with different values"
                ));
            }
            Some(_) => {}
            None => seen.push((k, v)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
