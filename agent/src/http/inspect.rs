//! Looking inside bodies on their way through: request bodies scanned for
//! secrets (read whole before forwarding when small, so policy can refuse
//! an upload that carries a key; scanned as they stream otherwise), token
//! requests read for their assertion, and response bodies masked before
//! they reach the client. Excerpts for the audit record come from here.

use std::sync::Arc;

use http::HeaderMap;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http_body::Body as _;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::Body;
use super::body::{Counted, Side};
use super::budget::Buffered;
use super::decode::{Decoded, Decoder, Encoded, Encoder};
use super::exchange::{Exchange, Seen};
use super::idle::Idle;
use super::scan::{Scan, Scanned};
use super::tap::Tap;
use crate::core::Findings;
use crate::core::ResponseMasking;
use crate::gate::{Asked, Verdict};
use crate::mask::{Mode, textual};
use crate::operation::github;

/// Entra's token endpoint, where a GitHub OIDC assertion becomes an Azure
/// token (see [`crate::identity::Links`]).
const TOKEN_OPERATION: &str = "entra.token";
/// A metadata service's token endpoint: a managed identity's token.
const IMDS_TOKEN: &str = "imds.token";
/// Token requests and responses are a few KiB; they are read whole.
const MAX_TOKEN_MESSAGE: usize = 64 * 1024;

/// Why a request is not forwarded after its body was looked at (what
/// policy says of what the body carries is in the verdict).
#[derive(Debug)]
pub(super) enum Refusal {
    /// The body could not be read, or opened.
    Unreadable(String),
    /// Reading it whole would pass `proxy.body_buffer_bytes`.
    Overloaded(String),
}

/// A token endpoint: its response reaches the client intact (the client
/// needs its token) and is masked in the audit; it is kept to link the
/// token it issues to who obtained it.
pub(super) fn is_token_request(verdict: &Verdict) -> bool {
    let name = verdict.operation.name.as_str();
    name == TOKEN_OPERATION || name == IMDS_TOKEN || name == github::COPILOT_TOKEN
}

fn header(headers: &HeaderMap, name: http::header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Largest model prompt read (and masked) whole.
const MAX_PROMPT: usize = 8 * 1024 * 1024;

/// The request body to forward (and, when its length changed because a
/// model prompt was masked, the new length). Small text bodies, token
/// requests and model prompts are read whole and scanned first; if they
/// carry secrets, the policy is asked again with what was found. Others
/// are scanned as they stream.
pub(super) async fn request_body(
    body: Incoming,
    headers: &HeaderMap,
    asked: Asked<'_>,
    exchange: &Arc<Exchange>,
    verdict: &mut Verdict,
) -> Result<(Body, Option<usize>), Refusal> {
    let ctx = exchange.ctx();
    let content_type = header(headers, CONTENT_TYPE);
    let text = textual(content_type);
    let length = header(headers, CONTENT_LENGTH).and_then(|l| l.parse::<usize>().ok());
    let token = is_token_request(verdict);
    let model = verdict.operation.service == crate::core::Service::Model;
    // A body that exists to carry a secret (a Key Vault secret being set)
    // keeps an excerpt only masked by its structure: read whole, or none.
    let carries_secret = crate::mask::secret_bearing_request(&verdict.operation.name);
    // The requests inside an envelope are judged before it is forwarded,
    // so it is read whole (up to the limit: a larger one cannot be judged).
    let envelope = crate::operation::envelope::is_envelope(&verdict.operation.name);
    // Every body is scanned by its bytes, whatever its label; a compressed
    // one decoded first. One airlock cannot decode cannot be judged.
    let decoder =
        match header(headers, CONTENT_ENCODING).filter(|e| !e.eq_ignore_ascii_case("identity")) {
            None => None,
            Some(coding) => Decoder::new(Some(coding)).map_err(|e| {
                Refusal::Unreadable(format!(
                    "the request body cannot be scanned ({e}), so it is not forwarded"
                ))
            })?,
        };
    let encoded = decoder.is_some();
    let excerpt = (text || carries_secret) && !encoded;
    let whole =
        token || model || envelope || length.is_some_and(|l| l > 0 && l <= ctx.scan_before_forward);
    if !whole && body.is_end_stream() {
        // No body (most GETs): nothing to scan or hold back.
        exchange.set_seen(
            false,
            Seen {
                excerpt: None,
                findings: Some(Findings::default()),
            },
        );
        return Ok((
            Counted::new(body, exchange.clone(), Side::Request).boxed(),
            None,
        ));
    }
    if !whole {
        // Scanned as it streams; a finding policy refuses fails the body.
        let scan = Scan::new(ctx.masker.scanner(), decoder);
        let judge = ctx.gate.rejudge(verdict, asked, ctx.process.clone());
        let excerpt_bytes = if excerpt && !carries_secret {
            ctx.excerpt_bytes
        } else {
            0
        };
        let scanned = Scanned::new(body, scan, judge, exchange.clone(), excerpt_bytes);
        return Ok((
            Counted::new(scanned, exchange.clone(), Side::Request).boxed(),
            None,
        ));
    }
    let limit = if token {
        MAX_TOKEN_MESSAGE
    } else if model {
        MAX_PROMPT.max(ctx.scan_before_forward)
    } else {
        ctx.scan_before_forward
    };
    // Reserved before a byte is read: the most this body can take.
    let want = length.map_or(limit, |l| l.min(limit));
    let Some(reservation) = ctx.body_budget.reserve(want) else {
        return Err(Refusal::Overloaded(format!(
            "airlock is holding as many request bodies as proxy.body_buffer_bytes allows; this one ({want} bytes to read before forwarding) is not forwarded: retry later"
        )));
    };
    let bytes = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            Refusal::Unreadable(format!(
                "the request body could not be read whole{}: {e}",
                if envelope {
                    " (an envelope is judged by every request inside it)"
                } else {
                    ""
                }
            ))
        })?
        .to_bytes();
    if token {
        super::forward::token_form(&bytes, exchange, verdict).await;
    }
    let mut findings = Findings::default();
    let mut new_length = None;
    let mut bytes = bytes;
    // A model prompt is masked before it leaves: the model never gets the
    // secret, the agent keeps working. Anything else is only scanned.
    if model {
        if let Some(mut masker) = ctx.masker.request(content_type, Mode::Mask) {
            let mut out = masker.push(&bytes).to_vec();
            out.extend_from_slice(&masker.finish());
            findings = masker.findings().clone();
            if !findings.is_empty() {
                new_length = Some(out.len());
                bytes = out.into();
            }
        }
    } else {
        let mut scan = Scan::new(ctx.masker.scanner(), decoder);
        scan.push(&bytes)
            .and_then(|()| scan.finish())
            .map_err(|e| Refusal::Unreadable(e.to_string()))?;
        findings = scan.findings().clone();
    }
    if model {
        let prompt =
            crate::model::Prompt::parse(&bytes, &ctx.masker, exchange.gate().models().text_bytes());
        exchange.set_prompt(prompt);
    }
    exchange.set_seen(
        false,
        Seen {
            excerpt: excerpt
                .then(|| {
                    ctx.masker
                        .request_excerpt(&verdict.operation.name, &bytes, ctx.excerpt_bytes)
                })
                .flatten(),
            findings: Some(findings.clone()),
        },
    );
    if !findings.is_empty() {
        let found: Vec<&'static str> = findings.detectors.keys().copied().collect();
        exchange
            .gate()
            .reassess(verdict, asked, &ctx.process, &found);
    }
    if envelope {
        if encoded {
            return Err(Refusal::Unreadable(
                "a compressed envelope cannot be opened, so it is not forwarded".into(),
            ));
        }
        let inner = crate::operation::envelope::open(
            &verdict.operation.name,
            asked.host,
            content_type,
            &bytes,
        )
        .map_err(|why| Refusal::Unreadable(format!("{why}: the envelope is not forwarded")))?;
        for i in &inner {
            if let crate::operation::envelope::Inner::Request { path, .. } = i {
                super::shape::path(path).map_err(|m| Refusal::Unreadable(m.message))?;
            }
        }
        let judged = ctx
            .gate
            .judge_inner(verdict, &inner, asked.port, &ctx.process);
        exchange.set_inner(judged);
    }
    Ok((
        Counted::new(
            Buffered::new(bytes, reservation),
            exchange.clone(),
            Side::Request,
        )
        .boxed(),
        new_length,
    ))
}

/// The response body for the client: masked unless the rule says `pass` or
/// it is a token endpoint's (the client needs its token; the audit excerpt
/// is masked either way). A gzip, deflate or br body is decoded to be
/// masked, and relayed decoded; one in a coding airlock cannot decode is
/// refused (`Err`) if it is one of the secret-bearing operations, else it
/// passes and the record says it was not scanned.
pub(super) fn response_body(
    body: Idle<Incoming>,
    status: http::StatusCode,
    headers: &mut HeaderMap,
    exchange: &Arc<Exchange>,
    verdict: &Verdict,
) -> Result<Body, String> {
    let ctx = exchange.ctx();
    // No body follows, whatever Content-Length says (for a HEAD it is the
    // GET's length, and stays as it is). Relayed as an empty body that says
    // it is at its end, so HTTP/2 ends the stream with the headers: the
    // upstream's body would announce that length and then send nothing, a
    // contradiction HTTP/2 answers with a stream reset (PROTOCOL_ERROR).
    if exchange.is_head()
        || status == http::StatusCode::NO_CONTENT
        || status == http::StatusCode::NOT_MODIFIED
    {
        drop(body);
        return Ok(counted(
            http_body_util::Empty::<bytes::Bytes>::new(),
            exchange,
            false,
        )
        .boxed());
    }
    let content_type = header(headers, CONTENT_TYPE).map(str::to_owned);
    let text = textual(content_type.as_deref());
    let token = is_token_request(verdict);
    let encoded =
        header(headers, CONTENT_ENCODING).is_some_and(|e| !e.eq_ignore_ascii_case("identity"));
    let wanted = verdict.decision.response == ResponseMasking::Mask && !token;
    if wanted && let Some(why) = unmaskable_format(&verdict.operation.name, content_type.as_deref())
    {
        return Err(why);
    }
    // A batch's answers are masked as if each had come alone.
    let masker = wanted
        .then(|| {
            ctx.masker
                .batch_response(&exchange.inner_operations())
                .or_else(|| {
                    ctx.masker
                        .response(&verdict.operation.name, content_type.as_deref())
                })
        })
        .flatten();
    // A body to mask that the upstream compressed despite being asked not
    // to: decoded on its way, and relayed decoded.
    let decoder = match (encoded && masker.is_some())
        .then(|| Decoder::new(header(headers, CONTENT_ENCODING)))
    {
        None => None,
        Some(Ok(decoder)) => decoder,
        Some(Err(e)) if crate::mask::structured(&verdict.operation.name) => {
            return Err(format!(
                "{} responses carry secrets and this one cannot be masked ({e}), so it is not relayed",
                verdict.operation.name,
            ));
        }
        Some(Err(e)) => {
            tracing::warn!(id = %exchange.id(), error = %e, "response relayed unscanned");
            let mut note = Findings::default();
            note.add("not-scanned-compressed");
            exchange.set_seen(
                true,
                Seen {
                    excerpt: None,
                    findings: Some(note),
                },
            );
            return Ok(counted(body, exchange, token).boxed());
        }
    };
    if masker.is_some() {
        // The masked body's length is not known in advance.
        headers.remove(CONTENT_LENGTH);
    }
    let excerpt = text && (!encoded || decoder.is_some());
    let encoder = decoder
        .as_ref()
        .and_then(|_| Encoder::new(header(headers, CONTENT_ENCODING)?));
    if decoder.is_some() {
        // Checksums of the bytes as the upstream coded them no longer hold.
        headers.remove(CONTENT_MD5);
        headers.remove(CRC64);
        if encoder.is_none() {
            headers.remove(CONTENT_ENCODING);
        }
    }
    let body = Decoded::new(body, decoder);
    // Counted outside: bytes and digest are of what the client receives,
    // and the tap reports before the body's end records the exchange.
    let tapped = Tap::new(body, masker, exchange.clone(), excerpt);
    let tapped = if verdict.operation.service == crate::core::Service::Model {
        tapped.reassembling()
    } else {
        tapped
    };
    // `/user` and `/copilot_internal/user` name the account behind an
    // OAuth token: kept (masked as usual) for the Copilot links.
    let keep =
        token || [github::USER, github::COPILOT_USER].contains(&verdict.operation.name.as_str());
    Ok(counted(Encoded::new(tapped, encoder), exchange, keep).boxed())
}

/// Storage's checksums of a response body.
const CONTENT_MD5: &str = "content-md5";
const CRC64: &str = "x-ms-content-crc64";

/// The response as relayed, counted; kept too (for the GitHub→Azure and
/// GitHub→Copilot links) when `keep`.
fn counted<B: http_body::Body>(body: B, exchange: &Arc<Exchange>, keep: bool) -> Counted<B> {
    let counted = Counted::new(body, exchange.clone(), Side::Response);
    if keep {
        counted.keeping(MAX_TOKEN_MESSAGE)
    } else {
        counted
    }
}

/// Responses must come back maskable: identity encoding is asked for.
pub(super) fn ask_identity_encoding(headers: &mut HeaderMap) {
    headers.insert(
        http::header::ACCEPT_ENCODING,
        http::HeaderValue::from_static("identity"),
    );
}

/// For an operation whose response carries secrets by design, asks the
/// upstream for what airlock can mask by structure: JSON instead of YAML or
/// protobuf (a Kubernetes Table stays a Table: its parameters are kept),
/// and the whole document instead of a `Range` of it, which could cut a
/// secret where no detector sees it.
pub(super) fn ask_maskable(headers: &mut HeaderMap, operation: &str) {
    if !crate::mask::structured(operation) {
        return;
    }
    headers.remove(http::header::RANGE);
    headers.remove(http::header::IF_RANGE);
    let asked: Vec<String> = headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|entry| {
            let entry = entry.trim();
            let (media, params) = entry.split_once(';').unwrap_or((entry, ""));
            let media = media.trim();
            match (media == "*/*" || is_json(media), params.is_empty()) {
                (true, _) => entry.to_owned(),
                (false, true) => "application/json".to_owned(),
                (false, false) => format!("application/json;{params}"),
            }
        })
        .collect();
    let accept = if asked.is_empty() {
        "application/json".to_owned()
    } else {
        asked.join(", ")
    };
    if let Ok(v) = http::HeaderValue::from_str(&accept) {
        headers.insert(http::header::ACCEPT, v);
    }
}

/// A response of a secret-bearing operation in a format airlock cannot
/// mask by structure (YAML, protobuf, anything but JSON) is not relayed.
fn unmaskable_format(operation: &str, content_type: Option<&str>) -> Option<String> {
    if !crate::mask::structured(operation) {
        return None;
    }
    let media = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .unwrap_or_default();
    (!media.is_empty() && !is_json(media)).then(|| {
        format!(
            "{operation} responses carry secrets and this one is {media}, which airlock cannot mask by its structure, so it is not relayed"
        )
    })
}

/// `application/json` or a `+json` type (`application/merge-patch+json`),
/// any case.
fn is_json(media: &str) -> bool {
    media.eq_ignore_ascii_case("application/json")
        || (media.len() > 5 && media.as_bytes()[media.len() - 5..].eq_ignore_ascii_case(b"+json"))
}
