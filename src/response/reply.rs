//! The hand-off of a response head from the application thread to the
//! response future, kept inside the responder: a channel of its own would
//! cost an allocation per request.

use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use super::responder::Outcome;

/// One outcome, sent once by the responder and taken once by the future.
pub(crate) struct ReplySlot(Mutex<Slot>);

/// No future will take the outcome: it was dropped.
#[derive(Debug)]
pub(crate) struct Undelivered;

// Boxing the outcome would cost the allocation the slot saves.
#[allow(clippy::large_enum_variant)]
enum Slot {
    /// Nothing sent yet; the future's waker, once it has polled.
    Waiting(Option<Waker>),
    Sent(Outcome),
    /// The future took the outcome.
    Taken,
    /// The future was dropped (the client went away).
    Closed,
    /// The responder ended without answering.
    Abandoned,
}

impl ReplySlot {
    pub(crate) fn new() -> Self {
        Self(Mutex::new(Slot::Waiting(None)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        crate::poison::lock(&self.0)
    }

    /// Hands `outcome` to the future, or drops it if no one will take it.
    pub(crate) fn send(&self, outcome: Outcome) -> Result<(), Undelivered> {
        if self.settle(Slot::Sent(outcome)) {
            Ok(())
        } else {
            Err(Undelivered)
        }
    }

    /// Moves a waiting slot to `next` and wakes the future. `false` if the
    /// slot was not waiting: `next` is dropped, outside the lock.
    fn settle(&self, next: Slot) -> bool {
        let mut slot = self.lock();
        let Slot::Waiting(waker) = &mut *slot else {
            drop(slot);
            drop(next);
            return false;
        };
        let waker = waker.take();
        *slot = next;
        drop(slot);
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// The future is gone: nothing sent from now on reaches anyone.
    pub(crate) fn is_closed(&self) -> bool {
        matches!(*self.lock(), Slot::Closed)
    }

    /// The responder will never send: the future resolves to `None`.
    pub(crate) fn abandon(&self) {
        self.settle(Slot::Abandoned);
    }

    /// The future's side: the outcome once sent, `None` if none will come.
    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<Option<Outcome>> {
        let mut slot = self.lock();
        match &mut *slot {
            Slot::Waiting(waker) => {
                if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            Slot::Sent(_) => match std::mem::replace(&mut *slot, Slot::Taken) {
                Slot::Sent(outcome) => Poll::Ready(Some(outcome)),
                _ => Poll::Ready(None),
            },
            Slot::Taken | Slot::Closed | Slot::Abandoned => Poll::Ready(None),
        }
    }

    /// The future's side, when it is dropped. An outcome sent but not taken
    /// is returned, for the caller to drop outside the lock.
    pub(crate) fn close(&self) -> Option<Outcome> {
        match std::mem::replace(&mut *self.lock(), Slot::Closed) {
            Slot::Sent(outcome) => Some(outcome),
            _ => None,
        }
    }

    /// An outcome waits to be taken.
    #[cfg(test)]
    pub(crate) fn is_sent(&self) -> bool {
        matches!(*self.lock(), Slot::Sent(_))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use super::*;
    use crate::response::simple_response;
    use crate::test_wakers::CountWakes;

    /// The response future's side, counting how often it is woken.
    struct WaitingFuture {
        wakes: Arc<CountWakes>,
        waker: Waker,
    }

    impl WaitingFuture {
        fn new() -> Self {
            let wakes = Arc::new(CountWakes::default());
            let waker = Waker::from(wakes.clone());
            Self { wakes, waker }
        }

        fn poll(&self, slot: &ReplySlot) -> Poll<Option<Outcome>> {
            slot.poll(&mut Context::from_waker(&self.waker))
        }

        fn woken(&self) -> usize {
            self.wakes.0.load(Ordering::Relaxed)
        }
    }

    fn outcome(status: u16) -> Outcome {
        let status = http::StatusCode::from_u16(status).unwrap();
        Outcome::Response(simple_response(status, None, false))
    }

    fn status(outcome: Option<Outcome>) -> Option<u16> {
        match outcome? {
            Outcome::Response(response) => Some(response.status().as_u16()),
            Outcome::Passthrough(_) => None,
        }
    }

    #[test]
    fn a_sent_outcome_wakes_the_waiting_future_and_is_taken_once() {
        let slot = ReplySlot::new();
        let future = WaitingFuture::new();
        assert!(future.poll(&slot).is_pending());
        assert!(slot.send(outcome(200)).is_ok());
        assert_eq!(future.woken(), 1);
        let Poll::Ready(taken) = future.poll(&slot) else {
            panic!("pending after the send")
        };
        assert_eq!(status(taken), Some(200));
        assert!(matches!(future.poll(&slot), Poll::Ready(None)));
        assert!(slot.send(outcome(500)).is_err(), "a second send");
    }

    #[test]
    fn after_the_future_is_dropped_sends_fail_and_an_untaken_outcome_comes_back() {
        let slot = ReplySlot::new();
        slot.send(outcome(200)).ok().unwrap();
        assert_eq!(status(slot.close()), Some(200));
        assert!(slot.is_closed());
        assert!(slot.send(outcome(204)).is_err());
    }

    #[test]
    fn an_abandoned_slot_wakes_the_future_with_nothing() {
        let slot = ReplySlot::new();
        let future = WaitingFuture::new();
        assert!(future.poll(&slot).is_pending());
        slot.abandon();
        assert_eq!(future.woken(), 1);
        assert!(matches!(future.poll(&slot), Poll::Ready(None)));
        assert!(!slot.is_closed());
    }
}
