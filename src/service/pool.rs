//! A bounded pool of application threads: threads start on demand up to a
//! maximum, idle ones end after a while, and a full queue refuses work.
//!
//! Growth is eager only up to the number of cores (fewer for an application
//! that computes fewer requests at once, such as a hosted Python app under
//! its GIL: see [`App::parallelism`](crate::App::parallelism)). Past that a
//! job waits in the queue, and a new thread starts only when no queued job
//! has started for [`GROW_AFTER`] and the threads at work are blocked, or for
//! [`GROW_WHILE_RUNNING`] if one of them is running (or ready to, waiting
//! for a core) or a woken idle thread is there to take the job once it gets
//! a core, and never while an idle thread spins for work (it takes the job
//! once it gets a core, as a new thread would): applications that compute
//! are served by a few hot threads
//! (each extra one costs context switches, and a busy machine makes every
//! queue wait, so waiting alone is no sign of blocking; a hosted Python app
//! would only add threads waiting for the GIL), while applications that
//! block still get a thread per blocked request (within [`GROW_AFTER`] of
//! the stall while they keep blocking, within [`MAX_CHECK_INTERVAL`] when
//! they start to after a long run of jobs that started at once), and a long
//! computation still lets other requests through.

use std::collections::VecDeque;
use std::fmt;
use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crate::poison;

pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// Runs a worker thread's whole loop (the application's [`App::run_thread`](crate::App::run_thread)).
pub(crate) type ThreadBody = Arc<dyn Fn(&mut (dyn FnMut() + Send)) + Send + Sync>;

/// How long an idle thread waits for work before it ends, unless the pool
/// is told otherwise; also how long the monitor waits for a first job.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an idle thread watches the queue before it sleeps, at least.
const IDLE_SPIN: Duration = Duration::from_micros(50);

/// How many times an idle thread yields its core before it sleeps.
const IDLE_SPIN_TURNS: u32 = 16;

/// How long queued jobs wait with none starting before the pool adds a thread.
const GROW_AFTER: Duration = Duration::from_micros(500);

/// The longest the monitor goes without looking at a queue whose jobs keep
/// starting: how late it may see the threads at work all block at once
/// after a long run of jobs that started at once.
const MAX_CHECK_INTERVAL: Duration = Duration::from_millis(4);

/// How long the monitor goes on looking after the queue empties, so that a
/// queue that empties and fills again costs no wake-up each time.
const MONITOR_LINGER: Duration = Duration::from_millis(100);

/// The same while a thread at work is running rather than blocked: the
/// operating system's (and Python's) time slice, so that a long computation
/// does not hold up every short request behind it.
const GROW_WHILE_RUNNING: Duration = Duration::from_millis(10);

/// How much later than its timer the monitor may wake before the delay
/// stops counting as part of a stall: a monitor that waited that long for
/// a core was off it with the threads at work (a virtual CPU the host
/// took back, or a core busy with other work), and nothing says they were
/// blocked meanwhile.
const LATE_LOOK: Duration = Duration::from_millis(1);

pub(crate) struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Idle threads sleep here.
    work: Condvar,
    /// The monitor sleeps here.
    stalled: Condvar,
    /// `queue.len()`, readable without the lock by spinning threads.
    queued: AtomicUsize,
    max_threads: usize,
    max_queue: usize,
    /// How long an idle thread waits for work before it ends.
    idle_timeout: Duration,
    /// Threads started at once, without waiting: one per core, or as many
    /// as the application can compute with at once if that is fewer.
    eager_threads: usize,
    /// Only ever called on the pool's own threads, which catch every job's
    /// panic themselves: it takes nothing from the pool's unwind safety.
    thread_body: Option<AssertUnwindSafe<ThreadBody>>,
    /// How long an idle thread waits before it first looks at the queue, and
    /// after each wake-up, as one that does not get a core would.
    #[cfg(test)]
    starved_idle: Duration,
    /// How much longer than its timer the monitor sleeps at each look, as
    /// one that does not get a core would.
    #[cfg(test)]
    monitor_lag: Duration,
}

struct State {
    queue: VecDeque<(Instant, Job)>,
    threads: usize,
    /// Threads without a job: spinning, or asleep on `work`.
    idle: usize,
    /// Idle threads asleep on `work`: only they need a notification.
    sleeping: usize,
    /// Sleeping threads notified that have not woken yet: each takes a
    /// queued job once it gets a core.
    waking: usize,
    /// The thread that wakes or adds workers when the queue stalls.
    monitor: Monitor,
    /// The monitor sleeps longer than [`GROW_AFTER`]: too long for a job
    /// queued while an idle thread could take it.
    monitor_lazy: bool,
    /// When the monitor was last started or notified for a queued job: how
    /// late it got a core is measured from then.
    monitor_called: Option<Instant>,
    /// When a thread last took a job from the queue.
    last_start: Instant,
    /// The operating system's ids of the threads running a job, where known.
    busy: Vec<u32>,
    shutdown: bool,
}

impl State {
    /// Idle threads watching the queue rather than asleep: each takes a
    /// queued job without a wake-up, once it has a core.
    fn spinning(&self) -> usize {
        self.idle - self.sleeping
    }

    /// Sleeping threads not yet notified.
    fn wakeable(&self) -> usize {
        // `waking` never exceeds `sleeping`; a miscount must still not
        // panic on the request path.
        self.sleeping.saturating_sub(self.waking)
    }
}

/// What the monitor is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Monitor {
    Stopped,
    /// Asleep until a job is queued.
    Waiting,
    /// Checking the queue every [`GROW_AFTER`].
    Watching,
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
    #[cfg(test)]
    pub(crate) fn new(max_threads: usize, max_queue: usize) -> Self {
        Self::with_thread_body(max_threads, max_queue, IDLE_TIMEOUT, None, None)
    }

    /// A pool whose threads each run their loop inside `thread_body`, and
    /// end after `idle_timeout` without work, for jobs of which at most
    /// `parallelism` can compute at once (`None`: one per core).
    pub(crate) fn with_thread_body(
        max_threads: usize,
        max_queue: usize,
        idle_timeout: Duration,
        thread_body: Option<ThreadBody>,
        parallelism: Option<NonZeroUsize>,
    ) -> Self {
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    threads: 0,
                    idle: 0,
                    sleeping: 0,
                    waking: 0,
                    monitor: Monitor::Stopped,
                    monitor_lazy: false,
                    monitor_called: None,
                    last_start: Instant::now(),
                    busy: Vec::new(),
                    shutdown: false,
                }),
                work: Condvar::new(),
                stalled: Condvar::new(),
                queued: AtomicUsize::new(0),
                max_threads,
                max_queue,
                idle_timeout,
                eager_threads: parallelism
                    .map_or(cores, NonZeroUsize::get)
                    .min(cores)
                    .min(max_threads),
                thread_body: thread_body.map(AssertUnwindSafe),
                #[cfg(test)]
                starved_idle: Duration::ZERO,
                #[cfg(test)]
                monitor_lag: Duration::ZERO,
            }),
        }
    }

    /// A pool whose idle threads wait `starved_idle` before they spin and
    /// once woken, as if the machine's cores were busy with other work.
    #[cfg(test)]
    fn with_starved_idle_threads(
        max_threads: usize,
        max_queue: usize,
        starved_idle: Duration,
    ) -> Self {
        let mut pool = Self::new(max_threads, max_queue);
        Arc::get_mut(&mut pool.shared)
            .expect("a new pool is not shared yet")
            .starved_idle = starved_idle;
        pool
    }

    /// A pool whose monitor starts, and wakes at each look (timed out or
    /// called), `monitor_lag` late, as if the machine's cores were busy with other work.
    #[cfg(test)]
    fn with_late_monitor(max_threads: usize, max_queue: usize, monitor_lag: Duration) -> Self {
        let mut pool = Self::new(max_threads, max_queue);
        Arc::get_mut(&mut pool.shared)
            .expect("a new pool is not shared yet")
            .monitor_lag = monitor_lag;
        pool
    }

    /// Runs `job` on a pool thread, or refuses it without blocking.
    pub(crate) fn submit(&self, job: Job) -> Result<(), Refused> {
        let shared = &self.shared;
        let mut st = shared.lock();
        let spinning = st.spinning();
        if spinning > st.queue.len() {
            // A spinning thread takes it, with no system call on either side.
            shared.enqueue(&mut st, job);
            return Ok(());
        }
        let working = st.threads - st.idle;
        if working + spinning + st.waking < shared.eager_threads {
            // Keep a thread per core at work.
            if st.wakeable() > 0 {
                shared.enqueue(&mut st, job);
                shared.wake_sleeper(st);
                return Ok(());
            }
            if st.threads < shared.max_threads {
                st.threads += 1;
                drop(st);
                return spawn_worker(shared, Some(job));
            }
        }
        if st.queue.len() < shared.max_queue {
            // The threads at work take it in turn; the monitor adds one if
            // they all block.
            shared.enqueue(&mut st, job);
            self.watch(st);
            return Ok(());
        }
        if st.threads < shared.max_threads {
            // The queue is full: grow rather than refuse.
            st.threads += 1;
            drop(st);
            return spawn_worker(shared, Some(job));
        }
        Err(Refused::Full)
    }

    /// Makes sure the monitor watches the queue.
    fn watch(&self, mut st: MutexGuard<'_, State>) {
        let shared = &self.shared;
        if st.monitor == Monitor::Watching {
            // Only for the first job after the queue emptied: later ones
            // find the monitor already looking at the queue's stall.
            if st.monitor_lazy && st.wakeable() > 0 && st.queue.len() == 1 {
                st.monitor_lazy = false;
                st.monitor_called = Some(Instant::now());
                drop(st);
                shared.stalled.notify_one();
            }
            return;
        }
        let start = st.monitor == Monitor::Stopped;
        st.monitor = Monitor::Watching;
        st.monitor_called = Some(Instant::now());
        drop(st);
        if !start {
            shared.stalled.notify_one();
            return;
        }
        let monitor_shared = shared.clone();
        let spawned = thread::Builder::new()
            .name("tower-wsgi-pool".to_owned())
            .spawn(move || monitor(&monitor_shared));
        if let Err(error) = spawned {
            // Queued jobs still run as threads free up.
            tracing::warn!(%error, "could not start the pool monitor");
            shared.lock().monitor = Monitor::Stopped;
        }
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
        self.shared.stalled.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        poison::lock(&self.state)
    }

    fn enqueue(&self, st: &mut State, job: Job) {
        st.queue.push_back((Instant::now(), job));
        self.queued.store(st.queue.len(), Ordering::Release);
    }

    /// Wakes a sleeping thread that no one has notified yet.
    fn wake_sleeper(&self, mut st: MutexGuard<'_, State>) {
        st.waking += 1;
        drop(st);
        self.work.notify_one();
    }

    fn dequeue(&self, st: &mut State) -> Option<Job> {
        let (_, job) = st.queue.pop_front()?;
        self.queued.store(st.queue.len(), Ordering::Release);
        st.last_start = Instant::now();
        Some(job)
    }
}

/// Starts a worker; the caller counted it in `threads` already.
fn spawn_worker(shared: &Arc<Shared>, first: Option<Job>) -> Result<(), Refused> {
    let worker_shared = shared.clone();
    let spawned = thread::Builder::new()
        .name("tower-wsgi-app".to_owned())
        .spawn(move || {
            match worker_shared
                .thread_body
                .as_ref()
                .map(|body| body.0.clone())
            {
                None => worker(&worker_shared, first),
                Some(body) => {
                    let mut first = Some(first);
                    body(&mut || {
                        if let Some(first) = first.take() {
                            worker(&worker_shared, first);
                        }
                    });
                }
            }
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "could not start an application thread");
        shared.lock().threads -= 1;
        return Err(Refused::Spawn);
    }
    Ok(())
}

fn worker(shared: &Shared, first: Option<Job>) {
    let tid = os_thread_id();
    let mut next = first;
    let mut st = shared.lock();
    loop {
        if let Some(job) = next.take().or_else(|| shared.dequeue(&mut st)) {
            st.busy.extend(tid);
            drop(st);
            run(job);
            st = shared.lock();
            if let Some(at) = st.busy.iter().position(|&busy| Some(busy) == tid) {
                st.busy.swap_remove(at);
            }
            continue;
        }
        if st.shutdown {
            break;
        }
        // One spinner per core at most: more would only take turns yielding.
        let spin = st.spinning() < shared.eager_threads;
        st.idle += 1;
        drop(st);
        let found = spin && spin_for_work(shared);
        st = shared.lock();
        if found || !st.queue.is_empty() || st.shutdown {
            st.idle -= 1;
            continue;
        }
        st.sleeping += 1;
        let (next, timeout) = shared
            .work
            .wait_timeout(st, shared.idle_timeout)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        st = next;
        #[cfg(test)]
        if !timeout.timed_out() {
            drop(st);
            thread::sleep(shared.starved_idle);
            st = shared.lock();
        }
        st.sleeping -= 1;
        st.waking = if timeout.timed_out() {
            st.waking.min(st.sleeping)
        } else {
            st.waking.saturating_sub(1)
        };
        st.idle -= 1;
        if timeout.timed_out() && st.queue.is_empty() {
            break;
        }
    }
    st.threads -= 1;
}

/// Watches the queue for a moment before the thread goes to sleep: under
/// load the next job comes within microseconds, and a sleeping thread costs
/// a system call to wake and a context switch to resume (on a busy core,
/// the submitting thread's too: the woken thread preempts it).
///
/// The moment is at least [`IDLE_SPIN`] and [`IDLE_SPIN_TURNS`] yields. On
/// an idle core a yield returns at once; on a busy one it lasts until the
/// other threads there have had their turn, so under load an idle thread
/// stays ready for the next job rather than asleep.
fn spin_for_work(shared: &Shared) -> bool {
    #[cfg(test)]
    thread::sleep(shared.starved_idle);
    let started = Instant::now();
    let mut turns = 0;
    loop {
        if shared.queued.load(Ordering::Acquire) > 0 {
            return true;
        }
        if turns >= IDLE_SPIN_TURNS && started.elapsed() > IDLE_SPIN {
            return false;
        }
        turns += 1;
        // Yield rather than burn: on a busy machine the thread that will
        // submit the next job may need this core.
        thread::yield_now();
    }
}

/// Wakes or adds threads whenever jobs wait and none has started for
/// [`GROW_AFTER`]: every thread at work is blocked. While no idle thread is
/// waiting, each look that finds nothing to do doubles the time to the
/// next, up to [`MAX_CHECK_INTERVAL`] (each look wakes a thread, which on a
/// busy core preempts the one that serves the connections); adding a thread
/// brings it back to [`GROW_AFTER`], and so does the first job queued
/// while an idle thread sleeps ([`Pool::watch`]). A stall is timed without
/// the monitor's own waits for a core past [`LATE_LOOK`]. Sleeps until a
/// job is queued once the queue has been empty for [`MONITOR_LINGER`], and
/// ends when it stays empty for [`IDLE_TIMEOUT`].
fn monitor(shared: &Arc<Shared>) {
    #[cfg(test)]
    thread::sleep(shared.monitor_lag);
    let mut st = shared.lock();
    let mut interval = GROW_AFTER;
    let mut empty_since = None;
    // Since when the queue's front job has waited with none starting, and
    // how much of that the monitor itself spent waking late.
    let mut stall_since = None;
    let mut stall_not_counted = Duration::ZERO;
    let mut woke_late = lateness(st.monitor_called.take().map(|called| called.elapsed()));
    while !st.shutdown {
        let since = st
            .queue
            .front()
            .map(|(queued_at, _)| *queued_at.max(&st.last_start));
        let stalled_for = since.map(|since| {
            let stalled = since.elapsed();
            stall_not_counted = if stall_since == Some(since) {
                stall_not_counted + woke_late
            } else {
                woke_late.min(stalled)
            };
            stalled.saturating_sub(stall_not_counted)
        });
        stall_since = since;
        let idle = if stalled_for.is_some() {
            empty_since = None;
            false
        } else {
            empty_since.get_or_insert_with(Instant::now).elapsed() >= MONITOR_LINGER
        };
        // Looking less often, unless this look finds something to do. An
        // idle thread could take a queued job as soon as the monitor sees
        // the threads at work blocked: no looking less often then.
        interval = if stalled_for.is_none() || st.wakeable() == 0 {
            (interval * 2).min(MAX_CHECK_INTERVAL)
        } else {
            GROW_AFTER
        };
        let wait = match stalled_for {
            None if idle => {
                st.monitor = Monitor::Waiting;
                interval = GROW_AFTER;
                IDLE_TIMEOUT
            }
            None => interval,
            Some(stalled) if stalled < GROW_AFTER => interval - stalled,
            // Every thread at work and none to add: nothing to look at.
            Some(_) if st.wakeable() == 0 && st.threads >= shared.max_threads => interval,
            // A spinning thread takes a job once it gets a core, however
            // long that takes: the stall is a busy core, and a thread more
            // would wait for the same core.
            Some(_) if st.spinning() > 0 => interval,
            Some(stalled)
                if stalled < GROW_WHILE_RUNNING
                    // So does a woken sleeper (for a time slice at most:
                    // a wake-up can go astray), or a thread that computes.
                    && (st.waking > 0 || {
                        let busy = st.busy.clone();
                        drop(st);
                        let running = busy.into_iter().any(is_running);
                        st = shared.lock();
                        running
                    }) =>
            {
                // Not blocked: a thread more would only take turns with it,
                // until the time slice is over.
                interval.min(GROW_WHILE_RUNNING - stalled)
            }
            Some(_) => {
                // One more thread at work, a sleeper if there is one. One at
                // a time: on a busy machine a stall may be a thread waiting
                // for a core, not one blocked, and extra threads cost.
                interval = GROW_AFTER;
                st.last_start = Instant::now();
                if st.wakeable() > 0 {
                    shared.wake_sleeper(st);
                    st = shared.lock();
                } else if st.threads < shared.max_threads {
                    st.threads += 1;
                    drop(st);
                    let _ = spawn_worker(shared, None);
                    st = shared.lock();
                }
                GROW_AFTER
            }
        };
        st.monitor_lazy = wait > GROW_AFTER;
        st.monitor_called = None;
        let waiting_since = Instant::now();
        let (next, timeout) = shared
            .stalled
            .wait_timeout(st, wait)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        st = next;
        #[cfg(test)]
        if !st.shutdown && !shared.monitor_lag.is_zero() {
            drop(st);
            thread::sleep(shared.monitor_lag);
            st = shared.lock();
        }
        // Late after its timer, or after the call that woke it.
        let called = st.monitor_called.take();
        woke_late = lateness(if timeout.timed_out() {
            Some(waiting_since.elapsed().saturating_sub(wait))
        } else {
            called.map(|called| called.elapsed())
        });
        st.monitor_lazy = false;
        if idle && timeout.timed_out() && st.queue.is_empty() {
            break;
        }
    }
    st.monitor = Monitor::Stopped;
}

/// How long the monitor waited for a core, if long enough to leave out of
/// a stall: `late`, how long after it was due it ran.
fn lateness(late: Option<Duration>) -> Duration {
    late.filter(|&late| late > LATE_LOOK).unwrap_or_default()
}

/// The calling thread's id in the operating system (Linux), for
/// [`is_running`].
fn os_thread_id() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// `true` when the thread is running or ready to run (`R` in
/// `/proc/self/task/TID/stat`), not blocked; `false` where that is unknown.
fn is_running(tid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, after_name) = stat.rsplit_once(')')?;
            after_name.trim_start().chars().next()
        })
        == Some('R')
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

/// A pool of application threads that several services share.
///
/// Each [`WsgiService`](crate::WsgiService) has a pool of its own unless
/// its [`Builder`](crate::Builder) is given one: services built with the
/// same `ThreadPool` (the ported middleware's edge and the services behind
/// it, or every legacy app of a router) then draw on one set of threads and
/// one queue, so their limits hold for the whole process. Clones share the
/// pool; its threads end once the last clone and every service using it
/// are dropped.
///
/// ```
/// use tower_wsgi::{AppBody, BoxError, Builder, Environ, StartResponse, ThreadPool};
///
/// fn app(_environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
///     start_response.start("200 OK", [("Content-Length", "2")])?;
///     Ok("ok".into())
/// }
///
/// let pool = ThreadPool::new(32, 128);
/// let builder = Builder::new().thread_pool(pool.clone());
/// let (first, second) = (builder.build(app), builder.build(app));
/// # drop((first, second));
/// ```
#[derive(Clone)]
pub struct ThreadPool {
    pool: Arc<Pool>,
}

impl ThreadPool {
    /// A pool of at most `max_threads` threads (a thread per core starts at
    /// once, more only while queued work stops starting because the threads
    /// at work block, or stays stalled for 10 ms while they compute), with
    /// room for `max_queue` waiting requests; past both, requests are
    /// answered 503.
    ///
    /// # Panics
    ///
    /// If `max_threads` is 0.
    ///
    /// Its threads run no application's [`App::run_thread`](crate::App::run_thread):
    /// an application that needs per-thread state for a thread's whole life
    /// (a hosted Python app keeps its interpreter thread state) is better
    /// served by a pool of its own.
    pub fn new(max_threads: usize, max_queue: usize) -> Self {
        Self::with_thread_body(max_threads, max_queue, IDLE_TIMEOUT, None, None)
    }

    /// A pool whose threads each run their loop inside `thread_body`, for
    /// jobs of which at most `parallelism` can compute at once.
    pub(crate) fn with_thread_body(
        max_threads: usize,
        max_queue: usize,
        idle_timeout: Duration,
        thread_body: Option<ThreadBody>,
        parallelism: Option<NonZeroUsize>,
    ) -> Self {
        assert!(max_threads > 0, "a thread pool needs at least one thread");
        Self {
            pool: Arc::new(Pool::with_thread_body(
                max_threads,
                max_queue,
                idle_timeout,
                thread_body,
                parallelism,
            )),
        }
    }

    pub(crate) fn submit(&self, job: Job) -> Result<(), Refused> {
        self.pool.submit(job)
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.pool.fmt(f)
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
    fn idle_threads_end_after_the_idle_timeout() {
        let pool = Pool::with_thread_body(4, 16, Duration::from_millis(100), None, None);
        run_jobs_that_wait_for_each_other(&pool, 4);
        assert_eq!(pool.threads(), 4);
        let deadline = Instant::now() + Duration::from_secs(5);
        while pool.threads() > 0 {
            assert!(Instant::now() < deadline, "idle threads did not end");
            thread::sleep(Duration::from_millis(20));
        }
        // A new job still gets a thread.
        let (tx, rx) = mpsc::channel();
        pool.submit(Box::new(move || tx.send(()).unwrap())).unwrap();
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
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

    #[test]
    fn running_jobs_get_more_threads_only_after_a_time_slice() {
        // A thread per core computes for a while; a job queued behind them
        // gets a thread of its own, but not as soon as it would if they
        // were blocked.
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        let pool = Pool::new(cores + 1, 64);
        assert_a_thread_comes_after_a_time_slice(&pool, cores);
    }

    #[test]
    fn a_monitor_that_wakes_late_does_not_count_its_lateness_as_a_stall() {
        // Threads that compute, and a monitor that gets its core 8 ms after
        // each of its timers (as when the host takes the virtual CPU back,
        // all of the process's threads with it): the lost time is no sign
        // that the threads at work made no progress, so the queued job gets
        // a thread only once the stall, without that time, reaches a time
        // slice (counted with it, that would be at the second late look).
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        let lag = Duration::from_millis(8);
        let pool = Pool::with_late_monitor(cores + 1, 64, lag);
        let compute_for = Duration::from_millis(600);
        let waited = wait_behind_computations(&pool, cores, compute_for);
        // The monitor's late start counts for nothing, and each late look
        // at most its timer's wait (up to the longest) of the stall, so
        // reaching a time slice takes three late looks after it.
        assert!(
            waited >= GROW_WHILE_RUNNING + lag * 3,
            "a thread was added after {waited:?}, with the monitor's lateness counted"
        );
        assert!(waited < compute_for, "it waited for a computation to end");
    }

    #[test]
    fn jobs_queued_for_spinning_threads_without_a_core_get_no_thread_while_they_spin() {
        // Idle threads spinning for work, but slow to get a core: the jobs
        // queued behind them are not blocked, and a new thread would wait
        // for a core as they do, so none is added, however long that takes.
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        let starved_idle = Duration::from_millis(300);
        let pool = Pool::with_starved_idle_threads(cores + 2, 64, starved_idle);
        run_jobs_that_wait_for_each_other(&pool, cores);
        while pool.shared.lock().idle < cores {
            thread::yield_now();
        }
        let first_start = first_start_of(&pool, cores + 1);
        assert!(
            first_start >= starved_idle / 2,
            "a thread was added after {first_start:?} while idle threads spun"
        );
    }

    #[test]
    fn a_job_queued_behind_woken_threads_without_a_core_waits_a_time_slice_at_most() {
        // Sleeping threads woken for jobs, but slow to get a core: a job
        // queued behind them waits for them as it would for threads that
        // compute (no thread of its own at once, nor another one woken),
        // then gets a thread rather than waiting for them however long.
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        let starved_idle = Duration::from_millis(300);
        let pool = Pool::with_starved_idle_threads(cores + 2, 64, starved_idle);
        run_jobs_that_wait_for_each_other(&pool, cores);
        while pool.shared.lock().sleeping < cores {
            thread::sleep(Duration::from_millis(10));
        }
        let first_start = first_start_of(&pool, cores + 1);
        assert!(
            first_start >= GROW_WHILE_RUNNING / 2,
            "a thread was added after {first_start:?} while woken ones waited for a core"
        );
        assert!(
            first_start < starved_idle / 2,
            "the job waited {first_start:?}, for the woken threads to get a core"
        );
    }

    #[test]
    fn jobs_that_block_after_a_long_run_of_short_ones_still_get_threads() {
        // Bursts of short jobs that queue and start at once keep the monitor
        // looking less and less often; then jobs that wait for each other
        // must still get their threads within a few of its looks.
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        let jobs = cores + 2;
        let pool = Pool::new(jobs, 64);
        let (done_tx, done_rx) = mpsc::channel();
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(100) {
            for _ in 0..16 {
                let done_tx = done_tx.clone();
                pool.submit(Box::new(move || {
                    let begun = Instant::now();
                    while begun.elapsed() < Duration::from_micros(20) {
                        std::hint::spin_loop();
                    }
                    done_tx.send(()).unwrap();
                }))
                .unwrap();
            }
            for _ in 0..16 {
                done_rx.recv_timeout(Duration::from_secs(5)).unwrap();
            }
        }
        let blocked_at = Instant::now();
        run_jobs_that_wait_for_each_other(&pool, jobs);
        assert!(
            blocked_at.elapsed() < Duration::from_secs(2),
            "threads came after {:?}",
            blocked_at.elapsed()
        );
    }

    #[test]
    fn a_job_queued_behind_blocked_threads_after_a_pause_starts_soon() {
        // A thread per core blocked, idle threads asleep, and a queue that
        // empties between jobs (the monitor looks less often then): each
        // queued job must still get an idle thread about as soon as the
        // monitor would see the stall, not after its longest wait.
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        let pool = Pool::new(cores + 4, 64);
        let release = Arc::new((Mutex::new(false), Condvar::new()));
        let (started_tx, started_rx) = mpsc::channel();
        let block = |pool: &Pool| {
            let (release, started_tx) = (release.clone(), started_tx.clone());
            pool.submit(Box::new(move || {
                started_tx.send(()).unwrap();
                let (released, wake) = &*release;
                let released = released.lock().unwrap();
                drop(wake.wait_while(released, |released| !*released).unwrap());
            }))
            .unwrap();
        };
        // Idle threads to wake: start some, let them finish and sleep.
        run_jobs_that_wait_for_each_other(&pool, cores + 2);
        for _ in 0..cores {
            block(&pool);
            started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        }
        thread::sleep(Duration::from_millis(20));
        let rounds = 24;
        let queue_after_pauses = || {
            (0..rounds)
                .map(|round| {
                    // The monitor settles into its longest wait with the queue
                    // empty; pauses that differ by fractions of it queue each
                    // job at another point of that wait.
                    let phase = MAX_CHECK_INTERVAL * round / rounds;
                    thread::sleep(Duration::from_millis(12) + phase);
                    // On a busy core an idle thread spins for longer (each
                    // yield lasts until others had their turn) and takes the
                    // job itself when it gets the core: not this case.
                    while pool.shared.lock().spinning() > 0 {
                        thread::sleep(Duration::from_micros(100));
                    }
                    let (tx, rx) = mpsc::channel();
                    let queued_at = Instant::now();
                    pool.submit(Box::new(move || tx.send(queued_at.elapsed()).unwrap()))
                        .unwrap();
                    rx.recv_timeout(Duration::from_secs(5)).unwrap()
                })
                .collect::<Vec<_>>()
        };
        // A job the monitor is not told of waits for its next look: about
        // half of them start late, in every attempt. A busy machine (tests
        // run beside each other) makes a few late, or an attempt now and then.
        let late = |waits: &[Duration]| {
            waits
                .iter()
                .filter(|&&waited| waited > GROW_AFTER * 3)
                .count()
        };
        let mut attempts = Vec::new();
        let started_soon = (0..4).any(|_| {
            let waits = queue_after_pauses();
            let started_soon = late(&waits) <= rounds as usize / 4;
            attempts.push(waits);
            started_soon
        });
        *release.0.lock().unwrap() = true;
        release.1.notify_all();
        assert!(started_soon, "queued jobs waited {attempts:?}");
    }

    #[test]
    fn one_computation_at_a_time_keeps_one_thread_at_work() {
        // An app under a global lock: a job queued behind one that computes
        // waits for the time slice, where a pool of one thread per core
        // (two or more cores, as on CI) would start it on a second thread
        // at once.
        let pool = Pool::with_thread_body(4, 64, IDLE_TIMEOUT, None, NonZeroUsize::new(1));
        assert_a_thread_comes_after_a_time_slice(&pool, 1);
    }

    #[test]
    fn one_computation_at_a_time_still_gets_threads_for_jobs_that_block() {
        let jobs = 4;
        let pool = Pool::with_thread_body(jobs, 64, IDLE_TIMEOUT, None, NonZeroUsize::new(1));
        run_jobs_that_wait_for_each_other(&pool, jobs);
        assert_eq!(pool.threads(), jobs);
    }

    #[test]
    fn blocked_jobs_get_threads_beyond_the_cores() {
        // Eight jobs that each wait for all eight: they finish only if the
        // pool grows past its eager threads while they block.
        let jobs = 8;
        let pool = Pool::new(jobs, 64);
        run_jobs_that_wait_for_each_other(&pool, jobs);
        assert_eq!(pool.threads(), jobs);
    }

    /// Queues a job behind `threads` jobs that compute for 400 ms: it must
    /// get a thread after about a time slice, before they end.
    fn assert_a_thread_comes_after_a_time_slice(pool: &Pool, threads: usize) {
        let compute_for = Duration::from_millis(400);
        let waited = wait_behind_computations(pool, threads, compute_for);
        assert!(
            waited >= GROW_WHILE_RUNNING / 2,
            "a thread was added after {waited:?} while {threads} computed"
        );
        assert!(waited < compute_for, "it waited for a computation to end");
    }

    /// Starts `threads` jobs that compute for `compute_for`, then queues one
    /// more: how long it waited to start.
    fn wait_behind_computations(pool: &Pool, threads: usize, compute_for: Duration) -> Duration {
        let (started_tx, started_rx) = mpsc::channel();
        for _ in 0..threads {
            let started_tx = started_tx.clone();
            pool.submit(Box::new(move || {
                started_tx.send(()).unwrap();
                let begun = Instant::now();
                while begun.elapsed() < compute_for {
                    std::hint::spin_loop();
                }
            }))
            .unwrap();
        }
        for _ in 0..threads {
            started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        }
        first_start_of(pool, 1)
    }

    /// Queues `jobs` jobs at once: how long the first to start waited.
    fn first_start_of(pool: &Pool, jobs: usize) -> Duration {
        let queued_at = Instant::now();
        let (tx, rx) = mpsc::channel();
        for _ in 0..jobs {
            let tx = tx.clone();
            pool.submit(Box::new(move || tx.send(queued_at.elapsed()).unwrap()))
                .unwrap();
        }
        rx.recv_timeout(Duration::from_secs(5)).unwrap()
    }

    /// Submits `jobs` jobs that each wait until all of them have started,
    /// and waits for them: they finish only on as many threads.
    fn run_jobs_that_wait_for_each_other(pool: &Pool, jobs: usize) {
        let arrived = Arc::new((Mutex::new(0), Condvar::new()));
        let (tx, rx) = mpsc::channel();
        for _ in 0..jobs {
            let arrived = arrived.clone();
            let tx = tx.clone();
            pool.submit(Box::new(move || {
                let (count, all_here) = &*arrived;
                let mut count = count.lock().unwrap();
                *count += 1;
                all_here.notify_all();
                let (count, timeout) = all_here
                    .wait_timeout_while(count, Duration::from_secs(10), |c| *c < jobs)
                    .unwrap();
                tx.send(!timeout.timed_out() && *count == jobs).unwrap();
            }))
            .unwrap();
        }
        for _ in 0..jobs {
            assert!(rx.recv_timeout(Duration::from_secs(15)).unwrap());
        }
    }
}
