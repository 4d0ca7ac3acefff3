//! A future polled only when its own waker fires, for what waits beside a
//! connection (its idle timer, the shutdown signal).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use crate::poison;

pin_project_lite::pin_project! {
    /// Polls its future only when that future's own waker fired: beside a
    /// connection, whose task wakes for every read and write, a timer
    /// polled on each wake-up would cost every request.
    pub(super) struct PolledWhenWoken<F> {
        #[pin]
        inner: F,
        signal: Arc<WakeSignal>,
        waker: Waker,
        // The task's waker that `signal` forwards to, as last stored there.
        forwards_to: Option<Waker>,
    }
}

impl<F: Future> PolledWhenWoken<F> {
    pub(super) fn new(inner: F) -> Self {
        let signal = Arc::new(WakeSignal {
            // The first poll starts the future.
            woken: AtomicBool::new(true),
            task: Mutex::new(None),
        });
        Self {
            inner,
            waker: Waker::from(signal.clone()),
            signal,
            forwards_to: None,
        }
    }
}

impl<F: Future> Future for PolledWhenWoken<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if !this
            .forwards_to
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            *this.forwards_to = Some(cx.waker().clone());
            *poison::lock(&this.signal.task) = Some(cx.waker().clone());
        }
        // Cleared before the poll: a wake-up during it polls again.
        if !this.signal.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        this.inner.poll(&mut Context::from_waker(this.waker))
    }
}

/// The waker [`PolledWhenWoken`] gives its future: notes the wake-up, then
/// wakes the task.
struct WakeSignal {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for WakeSignal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let task = poison::lock(&self.task).clone();
        if let Some(task) = task {
            task.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_wakers::CountWakes;

    /// Counts its polls and keeps the waker of the last one.
    struct Pending {
        polls: usize,
        waker: Option<Waker>,
    }

    impl Future for Pending {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls += 1;
            self.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    #[test]
    fn the_future_is_polled_first_and_then_only_once_its_own_waker_fired() {
        let task = Arc::new(CountWakes::default());
        let task_waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&task_waker);
        let mut polled = Box::pin(PolledWhenWoken::new(Pending {
            polls: 0,
            waker: None,
        }));
        let polls = |polled: &Pin<Box<PolledWhenWoken<Pending>>>| polled.inner.polls;
        for _ in 0..3 {
            // The task wakes for its other futures: this one is left alone.
            assert!(polled.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(polls(&polled), 1);
        let inner_waker = polled.inner.waker.clone().unwrap();
        inner_waker.wake_by_ref();
        assert_eq!(task.0.load(Ordering::Relaxed), 1, "the task is woken");
        assert!(polled.as_mut().poll(&mut cx).is_pending());
        assert!(polled.as_mut().poll(&mut cx).is_pending());
        assert_eq!(polls(&polled), 2);

        // A new task waker is the one woken next.
        let moved = Arc::new(CountWakes::default());
        let moved_waker = Waker::from(moved.clone());
        assert!(polled
            .as_mut()
            .poll(&mut Context::from_waker(&moved_waker))
            .is_pending());
        inner_waker.wake();
        assert_eq!(moved.0.load(Ordering::Relaxed), 1);
        assert_eq!(task.0.load(Ordering::Relaxed), 1);
    }
}
