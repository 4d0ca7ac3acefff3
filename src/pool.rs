//! A bounded pool of application threads: threads start on demand up to a
//! maximum, idle ones end after a while, and a full queue refuses work.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// How long an idle thread waits for work before it ends.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
    max_threads: usize,
    max_queue: usize,
}

struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    shutdown: bool,
}

/// Why a job was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Every thread is busy and the queue is full.
    Full,
    /// The operating system would not start a thread.
    Spawn,
}

impl Pool {
    pub(crate) fn new(max_threads: usize, max_queue: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    threads: 0,
                    idle: 0,
                    shutdown: false,
                }),
                work: Condvar::new(),
                max_threads,
                max_queue,
            }),
        }
    }

    /// Runs `job` on a pool thread, or refuses it without blocking.
    pub(crate) fn submit(&self, job: Job) -> Result<(), Refused> {
        let mut st = self.shared.lock();
        if st.idle > st.queue.len() {
            st.queue.push_back(job);
            drop(st);
            self.shared.work.notify_one();
            return Ok(());
        }
        if st.threads < self.shared.max_threads {
            st.threads += 1;
            drop(st);
            let shared = self.shared.clone();
            let spawned = thread::Builder::new()
                .name("tower-wsgi-app".to_owned())
                .spawn(move || worker(&shared, job));
            if let Err(error) = spawned {
                tracing::error!(%error, "could not start an application thread");
                self.shared.lock().threads -= 1;
                return Err(Refused::Spawn);
            }
            return Ok(());
        }
        if st.queue.len() < self.shared.max_queue {
            st.queue.push_back(job);
            return Ok(());
        }
        Err(Refused::Full)
    }

    /// Threads alive now (busy or idle).
    #[cfg(test)]
    pub(crate) fn threads(&self) -> usize {
        self.shared.lock().threads
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Queued jobs still run; then the threads end.
        self.shared.lock().shutdown = true;
        self.shared.work.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn worker(shared: &Shared, first: Job) {
    run(first);
    let mut st = shared.lock();
    loop {
        if let Some(job) = st.queue.pop_front() {
            drop(st);
            run(job);
            st = shared.lock();
            continue;
        }
        if st.shutdown {
            break;
        }
        st.idle += 1;
        let (next, timeout) = shared
            .work
            .wait_timeout(st, IDLE_TIMEOUT)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        st = next;
        st.idle -= 1;
        if timeout.timed_out() && st.queue.is_empty() {
            break;
        }
    }
    st.threads -= 1;
}

fn run(job: Job) {
    // Jobs catch their own panics; this keeps the thread alive regardless.
    if catch_unwind(AssertUnwindSafe(job)).is_err() {
        tracing::error!("a job panicked on an application thread");
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("max_threads", &self.shared.max_threads)
            .field("max_queue", &self.shared.max_queue)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn refuses_work_past_threads_and_queue() {
        let pool = Pool::new(1, 1);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel();
        pool.submit(Box::new(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        }))
        .unwrap();
        started_rx.recv().unwrap();
        let (done_tx, done_rx) = mpsc::channel();
        pool.submit(Box::new(move || done_tx.send(()).unwrap()))
            .unwrap();
        assert_eq!(pool.submit(Box::new(|| {})), Err(Refused::Full));
        release_tx.send(()).unwrap();
        done_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(pool.threads(), 1);
    }

    #[test]
    fn threads_end_when_the_pool_is_dropped() {
        let pool = Pool::new(4, 0);
        let (tx, rx) = mpsc::channel();
        for _ in 0..4 {
            let tx = tx.clone();
            pool.submit(Box::new(move || tx.send(thread::current().id()).unwrap()))
                .unwrap();
        }
        for _ in 0..4 {
            rx.recv_timeout(Duration::from_secs(5)).unwrap();
        }
        let shared = pool.shared.clone();
        drop(pool);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while shared.lock().threads > 0 {
            assert!(std::time::Instant::now() < deadline, "threads did not end");
            thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_panicking_job_keeps_its_thread() {
        let pool = Pool::new(1, 4);
        pool.submit(Box::new(|| panic!("job panic"))).unwrap();
        let (tx, rx) = mpsc::channel();
        pool.submit(Box::new(move || tx.send(()).unwrap())).unwrap();
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(pool.threads(), 1);
    }
}
