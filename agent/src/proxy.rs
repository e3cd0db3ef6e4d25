//! Where redirected connections arrive: recover each connection's original
//! destination and caller, sniff TLS, then splice it, or decrypt it and
//! relay HTTP.

mod connection;
pub(crate) mod hello;
mod listener;
mod mitm;
mod prefixed;
mod splice;

pub(crate) use connection::Proxy;
pub(crate) use listener::{Listeners, ProxyError};
