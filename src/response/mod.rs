//! The response side: the head rules, `start_response` and `write`, the
//! responder state machine between the application thread and hyper, the
//! crate's own answers, and the body and future hyper receives.

mod answers;
mod body;
mod future;
mod head;
mod options;
mod reply;
mod responder;
mod start_response;
mod trace;
mod values;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use options::{ConnectionPolicy, HopByHop};
pub use start_response::{Header, StartResponse, Writer};

pub(crate) use answers::simple_response;
pub(crate) use head::{parse_headers, parse_status, RequestFacts};
pub(crate) use options::{HeadRules, ResponseOptions, DEFAULT_SERVER};
pub(crate) use responder::{ChunkFrom, Failure, Responder, Sent, Stop};
pub(crate) use trace::RequestTrace;
