//! The response side: the rules for the head, the exchange between the
//! application thread and hyper, and the body and future hyper receives.

mod body;
mod exchange;
mod future;
pub(crate) mod head;
mod trace;

pub use body::ResponseBody;
pub use future::ResponseFuture;

pub(crate) use exchange::{simple_response, Exchange, Failure, Sent, Source, Stop};
pub(crate) use trace::RequestTrace;
