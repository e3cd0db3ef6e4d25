//! A captured connection to an instance metadata service (`capture.imds`):
//! plain HTTP/1.1 on both sides — the service speaks nothing else — judged
//! and recorded request by request as an intercepted connection is, so a
//! managed identity's token is asked for in the trail (`imds.token`) and
//! policy can refuse it.

use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

use super::connection::{Conn, Proxy};
use crate::http::{Dialer, Proto, UpstreamConn};
use crate::telemetry::ConnPath;

pub(super) async fn serve(proxy: &Proxy, conn: &Conn, client: TcpStream) {
    proxy.telemetry.traffic.connection(ConnPath::Imds);
    tracing::debug!(pid = conn.process.pid, comm = %conn.process.comm, dst = %conn.orig_dst, "instance metadata request");
    let dialer = Dialer {
        dst: conn.orig_dst.0,
        name: ServerName::IpAddress(conn.orig_dst.0.ip().to_canonical().into()),
        config: None,
        connect_timeout: proxy.connect_timeout,
        route: proxy.upstream_tls.route().clone(),
    };
    let ctx = proxy.conn_ctx(conn, None, None, true);
    let upstream = Ok(UpstreamConn::metadata(dialer));
    crate::http::serve(client, Proto::Http1, upstream, ctx, proxy.stopping.clone()).await;
}
