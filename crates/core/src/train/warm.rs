//! Keeps rayon's other workers looking for work while a run trains.
//!
//! A training step hands rayon a dozen small parallel pieces (each product split in two, the
//! optimizer's chunks), with short serial stretches between them. An idle rayon worker
//! yields to the OS a few dozen times and then sleeps; handing it the next piece then costs a
//! futex wake-up, which on a VM is often longer than the piece (bench/NOTES.md has the
//! figures). So for the length of a run each other worker runs a
//! poller that takes pieces as they appear and never sleeps, giving the OS its core back
//! every few microseconds.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long [`Warm::start`] waits for the pollers to be taken up. They normally start in
/// microseconds; a worker can only be missing when another job holds it (another run in this
/// process), and then this run goes on without them.
const START_TIMEOUT: Duration = Duration::from_millis(20);

/// CPU pause instructions between two looks at the other workers' queues: each look reads
/// cache lines that the worker pushing and popping jobs writes. No faster or slower than
/// continuous looking (bench/NOTES.md); kept as the politer loop.
const PAUSES_PER_POLL: u32 = 32;

/// Poll rounds between yields of the core to the OS.
const SPINS_PER_OS_YIELD: u32 = 64;

/// Pollers running on the other workers of rayon's pool until this is dropped.
pub struct Warm<'s> {
    stop: &'s AtomicBool,
}

impl<'s> Warm<'s> {
    /// Starts one poller per other worker of the current pool in `scope`; they return once
    /// `stop` is set, which dropping the guard does.
    pub fn start(
        scope: &rayon::Scope<'s>,
        stop: &'s AtomicBool,
        started: &'s AtomicUsize,
    ) -> Warm<'s> {
        let others = rayon::current_num_threads().saturating_sub(1);
        for _ in 0..others {
            scope.spawn(move |_| poll(stop, started));
        }
        // Wait (without running rayon jobs: this thread must not take a poller itself) until
        // every poller runs on a worker of its own. If one does not, stop them all: a poller
        // left in this thread's queue could otherwise be run by this thread while it waits for
        // a product, and spin there until the end of the run.
        let waited = Instant::now();
        while started.load(Ordering::Acquire) < others {
            if waited.elapsed() > START_TIMEOUT {
                stop.store(true, Ordering::Release);
                break;
            }
            std::thread::yield_now();
        }
        Warm { stop }
    }
}

impl Drop for Warm<'_> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn poll(stop: &AtomicBool, started: &AtomicUsize) {
    if stop.load(Ordering::Acquire) {
        return;
    }
    started.fetch_add(1, Ordering::AcqRel);
    let mut idle = 0u32;
    while !stop.load(Ordering::Acquire) {
        match rayon::yield_now() {
            Some(rayon::Yield::Executed) => idle = 0,
            _ => {
                idle += 1;
                if idle.is_multiple_of(SPINS_PER_OS_YIELD) {
                    std::thread::yield_now();
                } else {
                    for _ in 0..PAUSES_PER_POLL {
                        std::hint::spin_loop();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;
    use std::sync::Arc;
    use std::sync::mpsc;

    fn pool(threads: usize) -> Arc<rayon::ThreadPool> {
        Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap(),
        )
    }

    /// Parallel work under a warm pool, as a run does it, after `barrier` if given (waited
    /// on inside the pool); returns the pollers started.
    fn run(pool: &rayon::ThreadPool, barrier: Option<&std::sync::Barrier>) -> (u64, usize) {
        let (stop, started) = (AtomicBool::new(false), AtomicUsize::new(0));
        let sum = pool.scope(|scope| {
            if let Some(barrier) = barrier {
                barrier.wait();
            }
            let _warm = Warm::start(scope, &stop, &started);
            (0..200_000u64).into_par_iter().map(|i| i % 7).sum::<u64>()
        });
        (sum, started.load(Ordering::Acquire))
    }

    #[test]
    fn pollers_take_the_other_workers_and_return_when_dropped() {
        assert_eq!(run(&pool(1), None), (599_994, 0));
        assert_eq!(run(&pool(3), None), (599_994, 2));
    }

    /// Two runs in one process on a two-thread pool, each holding one worker (the barrier is
    /// inside the pool) when it starts its pollers: neither run's poller can be taken, and
    /// each run must go on without them rather than wait forever.
    #[test]
    fn two_runs_sharing_a_pool_both_finish() {
        for _ in 0..3 {
            // A fresh pool each time: a worker waiting at the barrier must not be one that is
            // also running another run's job (then the test itself would deadlock).
            let pool = pool(2);
            let together = Arc::new(std::sync::Barrier::new(2));
            let (tx, rx) = mpsc::channel();
            for _ in 0..2 {
                let (pool, tx, together) = (pool.clone(), tx.clone(), together.clone());
                std::thread::spawn(move || tx.send(run(&pool, Some(&together))));
            }
            for _ in 0..2 {
                let (sum, _) = rx
                    .recv_timeout(Duration::from_secs(60))
                    .expect("a run sharing the pool never finished");
                assert_eq!(sum, 599_994);
            }
        }
    }
}
