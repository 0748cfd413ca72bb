//! Subnormal floats flushed to zero on the threads that compute a run (`[train] flush_denormals`).
//!
//! Adam's moment estimates and the weights of dead units decay towards zero and become
//! subnormal; on Intel cores every operation on a subnormal takes a microcode assist (~100x),
//! and fc_adam_l2's epochs grew several-fold within its first three. TensorFlow flushes in its
//! compute threads and PyTorch offers `torch.set_flush_denormal(True)`; kiln flushes by default.
//!
//! The mode is a per-thread CPU register: on x86-64 MXCSR's FTZ (results that would be
//! subnormal become zero) and DAZ (subnormal inputs are read as zero); on aarch64 FPCR's FZ,
//! which does both. Other targets keep IEEE gradual underflow ([`SUPPORTED`] is false there).
//!
//! [`FlushDenormals::apply`] sets it on the calling thread and, by a `rayon::broadcast`, on
//! every worker of the current rayon pool (where kiln's kernels and the training loop run).
//! Dropping the guard gives the calling thread its previous mode back; the pool's workers get
//! theirs back when the last guard of the process is dropped, so that runs overlapping in one
//! process (tests) do not switch the mode off under each other. Runs that overlap in one
//! process share the pool and must agree on the mode (as they share Burn's RNG seed); one
//! runner process trains one run. A broadcast rather than the pool's `start_handler`: the mode
//! is the run's (its config says it), and the global pool exists before any config is read.
//! Threads a backend starts later from one of these threads (libtorch's intra-op pool) inherit
//! the mode: a new thread copies its creator's floating-point environment (pthread_create(3)).
//!
//! Rust's documentation calls a non-default floating-point environment undefined behaviour,
//! because the compiler folds constant float expressions with IEEE semantics. What that can
//! change here is whether a subnormal produced by compile-time arithmetic is flushed, which
//! the same binary does the same way every run; kiln's kernels compute on data, at run time.

use std::sync::Mutex;

/// Whether this target can flush subnormals (x86-64 and aarch64).
pub const SUPPORTED: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

/// The flush mode of a run on its threads, until dropped.
#[must_use = "the mode is restored when the guard is dropped"]
pub struct FlushDenormals {
    /// The calling thread's mode before [`FlushDenormals::apply`].
    previous: bool,
}

/// Guards alive in this process, and the pool's mode before the first of them.
static ACTIVE: Mutex<(usize, bool)> = Mutex::new((0, false));

impl FlushDenormals {
    /// Flushes subnormals (`flush = true`) or keeps them (`false`) on this thread and on
    /// every worker of the current rayon pool. The lock is held through the broadcast so that
    /// mode changes happen in order; guards are taken outside rayon jobs (training, eval and
    /// predict start from ordinary threads), where no worker waits for the lock.
    pub fn apply(flush: bool) -> FlushDenormals {
        let previous = set_this_thread(flush);
        let mut active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
        if active.0 == 0 {
            // The workers were started by (and copied the mode of) a thread like this one.
            active.1 = previous;
        }
        active.0 += 1;
        set_pool(flush);
        FlushDenormals { previous }
    }
}

impl Drop for FlushDenormals {
    fn drop(&mut self) {
        set_this_thread(self.previous);
        let mut active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
        active.0 -= 1;
        if active.0 == 0 {
            set_pool(active.1);
        }
    }
}

fn set_pool(flush: bool) {
    rayon::broadcast(|_| {
        set_this_thread(flush);
    });
}

/// Whether this thread flushes subnormals now.
pub fn this_thread() -> bool {
    SUPPORTED && arch::get() & arch::FLUSH == arch::FLUSH
}

/// Sets this thread's mode; returns the previous one.
pub fn set_this_thread(flush: bool) -> bool {
    if !SUPPORTED {
        return false;
    }
    let register = arch::get();
    arch::set(if flush {
        register | arch::FLUSH
    } else {
        register & !arch::FLUSH
    });
    register & arch::FLUSH == arch::FLUSH
}

#[cfg(target_arch = "x86_64")]
mod arch {
    use std::arch::asm;

    /// MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6).
    pub const FLUSH: u32 = 1 << 15 | 1 << 6;

    pub fn get() -> u32 {
        let mut register = 0u32;
        // SAFETY: stmxcsr stores the 32-bit MXCSR into the u32 the pointer names; it touches
        // nothing else (SSE is part of x86-64).
        unsafe {
            asm!("stmxcsr [{}]", in(reg) &mut register, options(nostack, preserves_flags));
        }
        register
    }

    pub fn set(register: u32) {
        // SAFETY: ldmxcsr loads MXCSR from the u32 the pointer names. `register` is a value
        // `get` read with only the FTZ/DAZ bits changed, so no reserved bit is set (which
        // would fault) and no exception becomes unmasked.
        unsafe {
            asm!("ldmxcsr [{}]", in(reg) &register, options(nostack, preserves_flags, readonly));
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod arch {
    use std::arch::asm;

    /// FPCR's flush-to-zero (bit 24), which on AArch64 also reads subnormal inputs as zero.
    pub const FLUSH: u64 = 1 << 24;

    pub fn get() -> u64 {
        let register: u64;
        // SAFETY: reading FPCR has no side effect.
        unsafe {
            asm!("mrs {}, fpcr", out(reg) register, options(nomem, nostack, preserves_flags));
        }
        register
    }

    pub fn set(register: u64) {
        // SAFETY: `register` is a value `get` read with only FZ changed: no trap is enabled.
        unsafe {
            asm!("msr fpcr, {}", in(reg) register, options(nomem, nostack, preserves_flags));
        }
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod arch {
    pub const FLUSH: u32 = 0;
    pub fn get() -> u32 {
        0
    }
    pub fn set(_: u32) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hint::black_box;

    /// The smallest positive subnormal f32, doubled by a multiplication at run time.
    fn doubled_subnormal() -> f32 {
        black_box(f32::from_bits(1)) * black_box(2.0f32)
    }

    /// What every thread of `pool` (the calling thread last) reports: its mode and a
    /// subnormal computed on it.
    fn observe(pool: &rayon::ThreadPool) -> Vec<(bool, f32)> {
        let mut seen = pool.broadcast(|_| (this_thread(), doubled_subnormal()));
        seen.push((this_thread(), doubled_subnormal()));
        seen
    }

    /// [`observe`] from the worker `install` runs on, which stands for the thread that starts a
    /// run: the other workers' reports, then the caller's.
    fn observe_others(pool: &rayon::ThreadPool) -> (Vec<(bool, f32)>, (bool, f32)) {
        let mut seen = observe(pool);
        let caller = seen.pop().unwrap();
        seen.remove(rayon::current_thread_index().unwrap());
        (seen, caller)
    }

    #[test]
    fn apply_sets_every_worker_of_the_pool_until_the_last_guard_is_dropped() {
        if !SUPPORTED {
            return;
        }
        // The pool's threads inherit this thread's mode when they start.
        let before = set_this_thread(false);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let kept = (false, f32::from_bits(2));
        // DAZ reads the subnormal operand as zero: an exact zero on every thread.
        let flushed = (true, 0.0);
        assert_eq!(observe(&pool), vec![kept; 4]);
        pool.install(|| {
            let first = FlushDenormals::apply(true);
            assert_eq!(observe(&pool), vec![flushed; 4]);
            // A second run overlapping the first: the first one ending leaves its mode on the
            // pool, and gives its own thread its previous mode back.
            let second = FlushDenormals::apply(true);
            drop(first);
            let others = observe_others(&pool);
            assert_eq!(others, (vec![flushed; 2], kept), "one run still going");
            drop(second);
            assert_eq!(
                observe(&pool),
                vec![kept; 4],
                "the last run restored the pool"
            );
            let off = FlushDenormals::apply(false);
            assert_eq!(observe(&pool), vec![kept; 4]);
            drop(off);
        });
        set_this_thread(before);
    }

    #[test]
    fn flush_to_zero_turns_subnormal_results_into_zeros() {
        if !SUPPORTED {
            return;
        }
        let before = set_this_thread(true);
        // Two normal operands whose product is subnormal: FTZ makes it zero.
        let product = black_box(f32::MIN_POSITIVE) * black_box(0.5f32);
        set_this_thread(false);
        let kept = black_box(f32::MIN_POSITIVE) * black_box(0.5f32);
        set_this_thread(before);
        assert_eq!(product, 0.0);
        assert!(kept.is_subnormal());
    }
}
