//! The decision point every decrypted request passes before anything is
//! forwarded: who is calling ([`crate::identity`]), what they ask for
//! ([`crate::operation`]), and what the live policy says ([`crate::policy`]).

use std::sync::{Arc, RwLock};

use crate::core::Decision;
use crate::core::Identity;
use crate::core::Operation;
use crate::core::ProcessInfo;
use crate::core::record::InnerInfo;
use crate::core::{read_lock, write_lock};
use crate::identity::Identifier;
use crate::operation::envelope::Inner;
use crate::policy::{LivePolicy, Subject};

/// What the gate concluded about one request.
#[derive(Clone, Debug)]
pub(crate) struct Verdict {
    pub identity: Arc<Identity>,
    pub operation: Arc<Operation>,
    pub decision: Decision,
    /// The path as classified and matched (escapes of unreserved
    /// characters decoded).
    pub path: String,
}

/// A request judged again when its streamed body turns out to carry
/// secrets.
#[derive(Debug)]
pub(crate) struct Rejudge {
    gate: Arc<Gate>,
    verdict: Verdict,
    method: String,
    host: String,
    port: u16,
    process: Arc<ProcessInfo>,
}

impl Rejudge {
    /// The decision once `secrets` were found: `None` while it still
    /// allows the request.
    pub(crate) fn refuses(&mut self, secrets: &[&'static str]) -> Option<Decision> {
        let Self {
            gate,
            verdict,
            method,
            host,
            port,
            process,
        } = self;
        verdict.decision = gate.decide_found(verdict, method, host, *port, process, secrets);
        (self.verdict.decision.action != crate::core::Action::Allow)
            .then(|| self.verdict.decision.clone())
    }
}

/// Identity, classification and policy, shared by every connection.
#[derive(Debug)]
pub(crate) struct Gate {
    /// Replaced whole when `[identity]` is reloaded.
    identifier: RwLock<Arc<Identifier>>,
    policy: Arc<LivePolicy>,
    models: crate::model::ModelHosts,
}

/// The parts of a request the gate looks at.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Asked<'a> {
    pub method: &'a http::Method,
    pub host: &'a str,
    pub port: u16,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
    /// Sent to an instance metadata service (`capture.imds`): named by
    /// [`crate::operation::imds`], its caller the identity it asks for.
    pub imds: bool,
}

impl Gate {
    pub(crate) fn new(
        identifier: Identifier,
        policy: Arc<LivePolicy>,
        models: crate::model::ModelHosts,
    ) -> Self {
        Self {
            identifier: RwLock::new(Arc::new(identifier)),
            policy,
            models,
        }
    }

    pub(crate) fn models(&self) -> &crate::model::ModelHosts {
        &self.models
    }

    pub(crate) fn identifier(&self) -> Arc<Identifier> {
        read_lock(&self.identifier).clone()
    }

    /// Installs a new identifier (its key refresh starts now); requests in
    /// flight finish with the old one.
    pub(crate) fn set_identifier(&self, identifier: Identifier) {
        identifier.start_refresh();
        *write_lock(&self.identifier) = Arc::new(identifier);
    }

    pub(crate) fn policy(&self) -> &Arc<LivePolicy> {
        &self.policy
    }

    pub(crate) async fn assess(&self, asked: Asked<'_>, process: &ProcessInfo) -> Verdict {
        // Classified and matched as servers read it (see `normalize_path`).
        let path = crate::operation::normalize_path(asked.path);
        let (identity, operation) = if asked.imds {
            (
                crate::identity::managed(asked.query),
                crate::operation::imds::classify(&path, asked.query),
            )
        } else {
            let identity = self.identifier().identify(asked.headers, asked.query).await;
            let operation = self.models.classify(asked.host, &path).unwrap_or_else(|| {
                crate::operation::classify(asked.host, asked.method, &path, asked.query)
            });
            (identity, operation)
        };
        let decision = self.decide(&Subject {
            identity: &identity,
            process,
            method: asked.method.as_str(),
            host: asked.host,
            port: asked.port,
            path: &path,
            operation: &operation.name,
            secrets: &[],
        });
        Verdict {
            identity: Arc::new(identity),
            operation: Arc::new(operation),
            decision,
            path: path.into_owned(),
        }
    }

    /// The policy asked again once the request body has been scanned and
    /// `secrets` were found in it.
    pub(crate) fn reassess(
        &self,
        verdict: &mut Verdict,
        asked: Asked<'_>,
        process: &ProcessInfo,
        secrets: &[&'static str],
    ) {
        verdict.decision = self.decide_found(
            verdict,
            asked.method.as_str(),
            asked.host,
            asked.port,
            process,
            secrets,
        );
    }

    /// The decision for a judged request once `secrets` were found in its
    /// body.
    fn decide_found(
        &self,
        verdict: &Verdict,
        method: &str,
        host: &str,
        port: u16,
        process: &ProcessInfo,
        secrets: &[&'static str],
    ) -> Decision {
        self.decide(&Subject {
            identity: &verdict.identity,
            process,
            method,
            host,
            port,
            path: &verdict.path,
            operation: &verdict.operation.name,
            secrets,
        })
    }

    /// Each request an envelope carries, named and asked of policy with
    /// the envelope's identity and process; the strictest decision becomes
    /// the envelope's (a held inner delete holds the batch).
    pub(crate) fn judge_inner(
        &self,
        verdict: &mut Verdict,
        inner: &[Inner],
        port: u16,
        process: &ProcessInfo,
    ) -> Vec<InnerInfo> {
        inner
            .iter()
            .map(|i| {
                let (method, host, path, operation) = match i {
                    Inner::Request {
                        method,
                        host,
                        path,
                        query,
                    } => {
                        let path = crate::operation::normalize_path(path).into_owned();
                        let m = http::Method::from_bytes(method.as_bytes())
                            .unwrap_or(http::Method::POST);
                        let op = crate::operation::classify(host, &m, &path, query.as_deref());
                        (Some(method.clone()), host.as_str(), Some(path), op.name)
                    }
                    Inner::Named(name) => (None, "", None, (*name).to_owned()),
                };
                let decision = self.decide(&Subject {
                    identity: &verdict.identity,
                    process,
                    method: method.as_deref().unwrap_or(""),
                    host,
                    port,
                    path: path.as_deref().unwrap_or(&verdict.path),
                    operation: &operation,
                    secrets: &[],
                });
                if decision.action.strictness() > verdict.decision.action.strictness() {
                    verdict.decision = decision.clone();
                }
                InnerInfo {
                    method,
                    path,
                    operation,
                    decision,
                }
            })
            .collect()
    }

    /// What [`Gate::reassess`] needs, owned: for a body scanned as it
    /// streams, after the request has been handed on.
    pub(crate) fn rejudge(
        self: &Arc<Self>,
        verdict: &Verdict,
        asked: Asked<'_>,
        process: Arc<ProcessInfo>,
    ) -> Rejudge {
        Rejudge {
            gate: self.clone(),
            verdict: verdict.clone(),
            method: asked.method.to_string(),
            host: asked.host.to_owned(),
            port: asked.port,
            process,
        }
    }

    /// The policy's decision for `subject`, asked once for the request's
    /// identity and once for each other credential it carries
    /// (`identity.also`): the strictest stands, so a credential cannot slip
    /// through beside one policy allows.
    fn decide(&self, subject: &Subject<'_>) -> Decision {
        let policy = self.policy.current();
        let mut decision = policy.decide(subject);
        for other in &subject.identity.also {
            let d = policy.decide(&Subject {
                identity: other,
                ..*subject
            });
            if d.action.strictness() > decision.action.strictness() {
                decision = d;
            }
        }
        decision
    }
}
