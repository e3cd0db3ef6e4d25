//! The instance metadata service (`169.254.169.254`, and whatever else
//! `capture.imds` lists): where a VM's, an Arc host's or an App Service
//! site's managed identity gets its tokens, with no secret in the request.

use super::{query_param, segments};
use crate::core::{Operation, Service, percent_decode};

/// Names a request to a metadata service. The path alone names it, any
/// method: the service answers only GET, and a rule about token requests
/// must hold for every spelling of one.
pub(crate) fn classify(path: &str, query: Option<&str>) -> Operation {
    let segs: Vec<String> = segments(path)
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let name = match segs.as_slice() {
        // IMDS and Azure Arc; App Service's `MSI_ENDPOINT`.
        ["metadata", "identity", "oauth2", "token"] | ["msi", "token"] => "imds.token",
        ["metadata", "identity", ..] => "imds.identity",
        ["metadata", "instance", ..] => "imds.instance",
        ["metadata", "attested", ..] => "imds.attested",
        ["metadata", "scheduledevents", ..] => "imds.scheduled_events",
        _ => "imds.request",
    };
    let audience = (name == "imds.token")
        .then(|| query_param(query, "resource"))
        .flatten()
        .map(percent_decode);
    Operation {
        audience,
        ..Operation::new(Service::Imds, name)
    }
}

/// Which managed identity a token request asks for, by the parameter that
/// names it; none of them is the system-assigned identity.
pub(crate) fn asked_identity(query: Option<&str>) -> ManagedIdentity {
    let get = |name| {
        query_param(query, name)
            .filter(|v| !v.is_empty())
            .map(percent_decode)
    };
    ManagedIdentity {
        client_id: get("client_id"),
        object_id: get("object_id").or_else(|| get("principal_id")),
        resource_id: get("msi_res_id").or_else(|| get("mi_res_id")),
    }
}

/// A user-assigned identity named by client id, object id or ARM resource
/// id; all `None` for the system-assigned one.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ManagedIdentity {
    pub client_id: Option<String>,
    pub object_id: Option<String>,
    pub resource_id: Option<String>,
}
