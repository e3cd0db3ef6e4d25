//! Where redirected connections arrive: bind the listeners, recover each
//! connection's original destination and caller, and relay it.

mod listener;
mod relay;

pub use listener::{Listeners, ProxyError};
pub use relay::Relay;
