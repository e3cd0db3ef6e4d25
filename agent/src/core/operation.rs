//! An intercepted request named as a person would name it: `request.operation`
//! in the audit record and what policy rules glob against (the naming itself
//! is `crate::operation`'s).

use serde::Serialize;

/// The Azure service an operation belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    /// Azure Resource Manager, the control plane.
    Arm,
    Storage,
    KeyVault,
    /// Function apps and other App Service sites, including Kudu (`scm`).
    Functions,
    Kubernetes,
    /// Entra ID (Azure AD) token and discovery endpoints.
    Entra,
    /// Microsoft Graph: the directory (applications, service principals,
    /// directory roles).
    Graph,
    /// The GitHub REST API (`api.github.com`): Copilot token exchange.
    Github,
    /// An instance metadata service (`capture.imds`): managed identities'
    /// tokens.
    Imds,
    /// An AI model API (GitHub Copilot, OpenAI-compatible endpoints): named
    /// by [`crate::model`], which knows the configured model hosts.
    Model,
    Unknown,
}

/// What one request does. Only the fields its service defines are set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Operation {
    pub service: Service,
    /// The name policy rules match; see the module doc for the conventions.
    pub name: String,
    /// ARM: the subscription id from `/subscriptions/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    /// ARM: the resource group from `…/resourceGroups/{name}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_group: Option<String>,
    /// ARM: the resource id, as sent, up to the last name in the path (the
    /// resource acted on, or the scope of a list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Storage: the account (first label of the host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Storage: the blob container, file share, Data Lake file system, queue
    /// or table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Storage: the path inside the container (blob name, file or Data Lake
    /// path), as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    /// Key Vault: the vault (first label of the host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vault: Option<String>,
    /// Key Vault: the secret, key, certificate or issuer name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Functions: the function invoked or whose keys are touched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Entra: the tenant id or alias (`common`, `organizations`) in the path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Metadata service: the resource a token is asked for (`resource`,
    /// decoded): `https://management.azure.com/`, a vault, Storage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Kubernetes: the API server's reading of a resource request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubeRef>,
}

/// A Kubernetes resource request, in the API server's own terms (the ones
/// RBAC and audit policies use).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KubeRef {
    pub verb: KubeVerb,
    /// The API group; absent for the core group (`/api/v1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
    pub resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The object's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `exec`, `attach`, `portforward`, `log`, `proxy`, `status`, `scale`…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
}

/// The API server's request verbs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KubeVerb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl KubeVerb {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::List => "list",
            Self::Watch => "watch",
            Self::Create => "create",
            Self::Update => "update",
            Self::Patch => "patch",
            Self::Delete => "delete",
            Self::DeleteCollection => "deletecollection",
        }
    }
}

impl Operation {
    /// An operation with only its service and name set; each service's
    /// classifier fills in its own fields.
    pub(crate) fn new(service: Service, name: impl Into<String>) -> Self {
        Self {
            service,
            name: name.into(),
            subscription: None,
            resource_group: None,
            resource: None,
            account: None,
            container: None,
            blob: None,
            vault: None,
            object: None,
            function: None,
            tenant: None,
            audience: None,
            kubernetes: None,
        }
    }
}
