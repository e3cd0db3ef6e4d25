//! Azure Storage credentials: `SharedKey`/`SharedKeyLite` authorization
//! headers (the account key itself signed the request) and shared access
//! signatures in the query. Neither can be verified without the account
//! key; airlock records what they grant. A SAS `sig` is never kept.

use std::time::SystemTime;

use super::fingerprint;
use crate::core::percent_decode;
use crate::core::{CredentialKind, Identity, SasInfo};

/// `Authorization: SharedKey account:signature`.
pub(crate) fn shared_key(scheme: &str, rest: &str) -> Option<Identity> {
    if !(scheme.eq_ignore_ascii_case("SharedKey") || scheme.eq_ignore_ascii_case("SharedKeyLite")) {
        return None;
    }
    let (account, _signature) = rest.split_once(':').unwrap_or((rest, ""));
    Some(Identity {
        kind: CredentialKind::SharedKey,
        account: Some(account.to_owned()),
        ..Identity::default()
    })
}

/// A query carrying a SAS (`sig` plus `sv` or `se`).
pub(crate) fn sas(query: &str) -> Option<Identity> {
    let mut info = SasInfo::default();
    let mut sig = None;
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        // As leniently as a server might read the names.
        match percent_decode(k).to_ascii_lowercase().as_str() {
            "sig" => sig = Some(v),
            "sv" => info.sv = Some(v),
            "sp" => info.sp = Some(v),
            "st" => info.st = Some(v),
            "se" => info.se = Some(v),
            "skoid" => info.skoid = Some(v),
            _ => {}
        }
    }
    let sig = sig?;
    if info.sv.is_none() && info.se.is_none() {
        return None;
    }
    let expiry = info.se.as_deref().and_then(parse_time);
    let start = info
        .st
        .as_deref()
        .and_then(parse_time)
        .unwrap_or_else(SystemTime::now);
    info.lifetime_s = expiry.map(|e| match e.duration_since(start) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    });
    Some(Identity {
        kind: CredentialKind::Sas,
        expires: expiry.map(|e| humantime::format_rfc3339_seconds(e).to_string()),
        fingerprint: Some(fingerprint(&sig)),
        oid: info.skoid.clone(),
        sas: Some(info),
        ..Identity::default()
    })
}

/// SAS times: ISO 8601 UTC, `2026-11-28T10:00:00Z` or a bare date.
fn parse_time(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s)
        .or_else(|_| humantime::parse_rfc3339_weak(&format!("{s}T00:00:00Z")))
        .ok()
}
