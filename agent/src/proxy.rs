//! Where redirected connections arrive: recover each connection's original
//! destination and caller, sniff TLS, then splice it, or decrypt it and
//! relay HTTP; serve an instance metadata service's plain HTTP.

pub(crate) mod connect;
mod connection;
pub(crate) mod hello;
mod listener;
mod metadata;
mod mitm;
mod prefixed;
mod splice;

pub(crate) use connection::Proxy;
pub(crate) use listener::{Listeners, ProxyError};
