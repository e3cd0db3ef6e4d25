//! How airlock itself reaches upstreams: directly, or through
//! `proxy.upstream_proxy` (an HTTP proxy, with `CONNECT host:port`) except
//! for the hosts in `proxy.no_proxy`. Every upstream dial goes through
//! [`Route::connect`]: intercepted and passed-through connections, the
//! issuers' keys, the approval webhook. The proxy's password never leaves
//! this module.

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::{ProxyConfig, ProxyUrl};
use crate::host::InterceptList;

/// The longest answer head a proxy may give to `CONNECT`.
const MAX_ANSWER: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("proxy.upstream_proxy: {0}")]
    Url(String),
    #[error("proxy.upstream_proxy_password_file {}: {source}", path.display())]
    Password {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where upstream connections go.
#[derive(Debug, Default)]
pub struct Route {
    via: Option<Via>,
    /// Reached directly even with a proxy.
    no_proxy: InterceptList,
}

/// The upstream proxy.
struct Via {
    /// `host:port`, as dialled.
    proxy: String,
    /// `Basic …` when a user is configured (a credential: not in `Debug`).
    authorization: Option<String>,
}

impl std::fmt::Debug for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Via")
            .field("proxy", &self.proxy)
            .field("authorized", &self.authorization.is_some())
            .finish()
    }
}

impl Route {
    /// `[proxy]`'s `upstream_proxy`, its password file and `no_proxy`
    /// (validated with the config).
    pub fn from_config(config: &ProxyConfig) -> Result<Self, EgressError> {
        let Some(url) = config.upstream_proxy.as_deref() else {
            return Ok(Self::default());
        };
        // Validated with the config; never fall back to direct on a
        // host whose only way out is the proxy.
        let url = ProxyUrl::parse(url).map_err(EgressError::Url)?;
        let password = match &config.upstream_proxy_password_file {
            None => String::new(),
            Some(path) => std::fs::read_to_string(path)
                .map_err(|source| EgressError::Password {
                    path: path.clone(),
                    source,
                })?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
        };
        use base64::Engine as _;
        let authorization = url.user.as_ref().map(|user| {
            let pair = format!("{user}:{password}");
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        let proxy = if url.host.contains(':') {
            format!("[{}]:{}", url.host, url.port)
        } else {
            format!("{}:{}", url.host, url.port)
        };
        Ok(Self {
            via: Some(Via {
                proxy,
                authorization,
            }),
            no_proxy: InterceptList::parse(&config.no_proxy).unwrap_or_default(),
        })
    }

    /// The proxy `host` is reached through, if any.
    fn via(&self, host: &str) -> Option<&Via> {
        self.via.as_ref().filter(|_| !self.no_proxy.matches(host))
    }

    /// Whether `host` is reached through the upstream proxy.
    pub(crate) fn proxies(&self, host: &str) -> bool {
        self.via(host).is_some()
    }

    /// A TCP connection to `host:port`: through the upstream proxy, which
    /// resolves the name, or directly — to `direct` when the caller already
    /// chose the address (the original destination), else to what the
    /// name resolves to.
    pub(crate) async fn connect(
        &self,
        host: &str,
        port: u16,
        direct: Option<SocketAddr>,
    ) -> std::io::Result<TcpStream> {
        let Some(via) = self.via(host) else {
            return match direct {
                Some(addr) => TcpStream::connect(addr).await,
                None => TcpStream::connect((host, port)).await,
            };
        };
        let mut tcp = TcpStream::connect(via.proxy.as_str()).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("the upstream proxy {}: {e}", via.proxy))
        })?;
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut ask = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(a) = &via.authorization {
            ask.push_str(&format!("Proxy-Authorization: {a}\r\n"));
        }
        ask.push_str("\r\n");
        tcp.write_all(ask.as_bytes()).await?;
        let status = read_answer(&mut tcp).await.map_err(|why| {
            std::io::Error::other(format!("the upstream proxy {}: {why}", via.proxy))
        })?;
        if !(200..300).contains(&status.0) {
            return Err(std::io::Error::other(format!(
                "the upstream proxy {} refused CONNECT {authority}: {}",
                via.proxy, status.1
            )));
        }
        Ok(tcp)
    }
}

/// Reads the proxy's answer head byte by byte (nothing of the tunnel may be
/// consumed); its status code and line.
async fn read_answer(tcp: &mut TcpStream) -> Result<(u16, String), String> {
    let mut head = Vec::with_capacity(128);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_ANSWER {
            return Err("an answer head too long".into());
        }
        let mut byte = [0u8; 1];
        match tcp.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return Err("it closed before answering CONNECT".into()),
        }
    }
    let line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let code = line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))?;
    Ok((code, line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_hosts_go_direct_and_the_password_stays_out_of_debug() {
        let dir = crate::scratch_dir("egress");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("password");
        std::fs::write(&file, "s3cret\n").unwrap();
        let config = ProxyConfig {
            upstream_proxy: Some("http://airlock@proxy.corp:3128".into()),
            upstream_proxy_password_file: Some(file),
            no_proxy: vec!["*.corp".into(), "10.0.0.1".into()],
            ..ProxyConfig::default()
        };
        let route = Route::from_config(&config).unwrap();
        let via = route.via("management.azure.com").expect("proxied");
        assert_eq!(via.proxy, "proxy.corp:3128");
        // base64("airlock:s3cret")
        assert_eq!(
            via.authorization.as_deref(),
            Some("Basic YWlybG9jazpzM2NyZXQ=")
        );
        assert!(route.via("git.corp").is_none());
        assert!(route.via("10.0.0.1").is_none());
        assert!(!format!("{route:?}").contains("YWlybG9jazpzM2NyZXQ"));
        assert!(Route::default().via("management.azure.com").is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
