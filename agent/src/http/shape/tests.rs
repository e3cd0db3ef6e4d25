use super::*;

const SNI: &str = "management.azure.com";

fn dst() -> Endpoint {
    Endpoint {
        ip: "20.37.158.0".parse().unwrap(),
        port: 443,
    }
}

fn req(uri: &str, headers: &[(&str, &str)]) -> Request<()> {
    let mut b = Request::builder().uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap()
}

fn code(r: Result<(), Misshapen>) -> Option<&'static str> {
    r.err().map(|m| m.code)
}

#[test]
fn the_host_named_must_be_the_server_named() {
    let ok = |uri: &str, host: &[(&str, &str)]| check(&req(uri, host), Some(SNI), dst());
    assert_eq!(ok("/x", &[("host", SNI)]), Ok(()));
    assert_eq!(ok("/x", &[("host", "Management.Azure.COM.:443")]), Ok(()));
    assert_eq!(ok(&format!("https://{SNI}/x"), &[]), Ok(()));
    for (uri, host) in [
        ("/x", "acct1.blob.core.windows.net"),
        ("/x", "management.azure.com:8443"),
        ("/x", "management.azure.com.evil.example"),
        ("/x", "user@management.azure.com"),
        ("/x", "management.azure.com:x"),
    ] {
        let m = ok(uri, &[("host", host)]).unwrap_err();
        assert_eq!(m.status, StatusCode::MISDIRECTED_REQUEST, "{host}");
        assert!(m.message.contains(SNI), "{}", m.message);
    }
    // An absolute URI (or :authority) and Host must both name it.
    assert_eq!(
        code(ok(
            "https://acct1.blob.core.windows.net/x",
            &[("host", SNI)]
        )),
        Some("MisdirectedRequest")
    );
    assert_eq!(
        code(ok(
            &format!("https://{SNI}/x"),
            &[("host", "other.example")]
        )),
        Some("MisdirectedRequest")
    );
    assert_eq!(
        code(ok("/x", &[("host", SNI), ("host", SNI)])),
        Some("AmbiguousHost")
    );
}

#[test]
fn without_a_server_name_only_the_address_is_a_host() {
    let ok = |host: &str, sni: Option<&str>| check(&req("/x", &[("host", host)]), sni, dst());
    assert_eq!(ok("20.37.158.0", None), Ok(()));
    assert_eq!(ok("20.37.158.0:443", Some("20.37.158.0")), Ok(()));
    assert_eq!(code(ok(SNI, None)), Some("MisdirectedRequest"));
    assert_eq!(
        code(ok(SNI, Some("20.37.158.0"))),
        Some("MisdirectedRequest")
    );
    assert_eq!(code(ok("20.37.158.1", None)), Some("MisdirectedRequest"));
    let v6 = Endpoint {
        ip: "2603:1030::1".parse().unwrap(),
        port: 443,
    };
    assert_eq!(
        check(&req("/x", &[("host", "[2603:1030::1]:443")]), None, v6),
        Ok(())
    );
}

#[test]
fn paths_a_server_would_resolve_differently_are_refused() {
    let rg = "/subscriptions/s/resourceGroups/rg";
    for p in [
        "/x/y",
        "/",
        "/blob.name.with.dots/..a/a..",
        "/%41b",
        "/100%25",
        &format!("{rg}/providers/Microsoft.Web/sites/a%20b"),
    ] {
        assert_eq!(path(p), Ok(()), "{p}");
    }
    for p in [
        &format!("{rg}/."),
        &format!("{rg}/../rg2"),
        &format!("{rg}/%2e"),
        &format!("{rg}/%2E%2e/x"),
        "/subscriptions/s%2FresourceGroups/rg",
        "/a%2fb",
        "/a%5Cb",
        "/a\\..\\b",
        "/a%00b",
        // Found by the `names` fuzz target: an escape that decodes into
        // another (`%4%62` → `%4b` → `K`; `%%37%33ubscriptions`).
        "/x/%4%62",
        "/%%37%33ubscriptions/s/resourceGroups/rg",
    ] {
        assert_eq!(code(path(p)), Some("NonCanonicalPath"), "{p}");
    }
}

#[test]
fn a_credential_given_twice_two_ways_is_refused() {
    let creds = |headers: &[(&str, &str)], q: &str| {
        check(&req(&format!("/c/b?{q}"), headers), Some(SNI), dst())
    };
    let host = ("host", SNI);
    assert_eq!(creds(&[host], "sv=1&sig=a&comp=list&comp=list"), Ok(()));
    assert_eq!(
        creds(&[host], "sig=a&sig=a"),
        Ok(()),
        "the same value twice"
    );
    for q in [
        "sv=1&sig=a&sig=b",
        "sig=a&SIG=b",
        "se=2026-01-01&se=2099-01-01&sig=a",
        "sig=a&s%69g=b",
        "resource=https://vault.azure.net&client_id=a&client_id=b",
        "mi_res_id=/x&MI_RES_ID=/y",
        "resource=https://management.azure.com/&resource=https://vault.azure.net",
    ] {
        assert_eq!(code(creds(&[host], q)), Some("AmbiguousCredential"), "{q}");
    }
    assert_eq!(
        code(creds(
            &[
                host,
                ("authorization", "Bearer a"),
                ("authorization", "Bearer b")
            ],
            ""
        )),
        Some("AmbiguousCredential")
    );
}
