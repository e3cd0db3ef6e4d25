//! Kubernetes API server requests, read the way the API server's own
//! request-info parser reads them (k8s.io/apiserver `requestinfo.go`).

use super::{Http, query_param, segments};
use crate::core::{KubeRef, KubeVerb, Operation, Service};

/// Subresources that open a stream or a tunnel. Their name carries no verb:
/// a GET with a WebSocket upgrade and a POST do the same thing.
const CONNECT_SUBRESOURCES: &[&str] = &["exec", "attach", "portforward", "proxy", "log"];

/// Whether `path` has the Kubernetes API shape (`/api/{version}/…` or
/// `/apis/{group}/{version}/…`), for hosts not known to be API servers.
pub(super) fn is_api_path(path: &str) -> bool {
    let version = |s: Option<&&str>| {
        s.is_some_and(|s| {
            let mut b = s.bytes();
            b.next().is_some_and(|c| c.eq_ignore_ascii_case(&b'v'))
                && b.next().is_some_and(|c| c.is_ascii_digit())
        })
    };
    let segs = segments(path);
    match segs.first() {
        Some(s) if s.eq_ignore_ascii_case("api") => version(segs.get(1)),
        Some(s) if s.eq_ignore_ascii_case("apis") => version(segs.get(2)),
        _ => false,
    }
}

pub(super) fn classify(verb: Http, path: &str, query: Option<&str>) -> Operation {
    let segs = segments(path);
    let is = |s: &str, word: &str| s.eq_ignore_ascii_case(word);
    let (group, rest) = match segs.as_slice() {
        [api, _version, rest @ ..] if is(api, "api") => (None, rest),
        [apis, group, _version, rest @ ..] if is(apis, "apis") => (Some(*group), rest),
        [api, ..] if is(api, "api") || is(api, "apis") => return named("k8s.discovery"),
        _ => return named("k8s.request"),
    };
    // The deprecated `/watch/` prefix makes any GET a watch.
    let (watch_prefix, rest) = match rest {
        [w, rest @ ..] if is(w, "watch") => (true, rest),
        _ => (false, rest),
    };
    // `namespaces/{ns}/{resource}…` scopes a resource to a namespace, but
    // `namespaces/{ns}` and its own `status` and `finalize` subresources are
    // the namespace object itself.
    let (namespace, parts) = match rest {
        [n, ns, more @ ..] if is(n, "namespaces") => {
            let scoped = more
                .first()
                .is_some_and(|s| !is(s, "status") && !is(s, "finalize"));
            (Some(*ns), if scoped { more } else { rest })
        }
        _ => (None, rest),
    };
    let Some((&resource, parts)) = parts.split_first() else {
        return named("k8s.discovery");
    };
    let object = parts.first().copied();
    // The API server reads no subresource on a watch: extra segments there
    // are ignored.
    let subresource = parts.get(1).copied().filter(|_| !watch_prefix);

    let watch_param = query_param(query, "watch")
        .is_some_and(|w| ["true", "t", "1"].iter().any(|t| w.eq_ignore_ascii_case(t)));
    let kube_verb = match verb {
        Http::Get | Http::Head if watch_prefix || watch_param => KubeVerb::Watch,
        Http::Get | Http::Head if object.is_some() => KubeVerb::Get,
        Http::Get | Http::Head => KubeVerb::List,
        Http::Post => KubeVerb::Create,
        Http::Put => KubeVerb::Update,
        Http::Patch => KubeVerb::Patch,
        Http::Delete if object.is_some() => KubeVerb::Delete,
        Http::Delete => KubeVerb::DeleteCollection,
        Http::Merge | Http::Other => return named("k8s.request"),
    };

    let mut name = vec!["k8s"];
    name.extend(group);
    name.push(resource);
    let connect = subresource.and_then(|s| CONNECT_SUBRESOURCES.iter().find(|c| is(s, c)));
    match (connect, subresource) {
        (Some(connect), _) => name.push(connect),
        (None, Some(sub)) => name.extend([sub, kube_verb.as_str()]),
        (None, None) => name.push(kube_verb.as_str()),
    }
    let own = |s: Option<&str>| s.map(str::to_owned);
    Operation {
        kubernetes: Some(KubeRef {
            verb: kube_verb,
            api_group: own(group),
            resource: resource.to_owned(),
            namespace: own(namespace),
            name: own(object),
            subresource: own(subresource),
        }),
        ..named(&name.join("."))
    }
}

fn named(name: &str) -> Operation {
    Operation::new(Service::Kubernetes, name)
}
