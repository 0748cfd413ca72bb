//! The process's allocator: mimalloc, told to keep the memory a run frees.
//!
//! Training frees and allocates the same activation-sized buffers (MBs; ~100 MB a full-batch
//! MNIST step) every step. By default mimalloc hands freed memory back to the kernel after a
//! delay ("purging"), and the next step page-faults it in again and the kernel zeroes it: on
//! this project's VM that was most of a full-batch step's system time (sigmoid_fullbatch, 6
//! steps: 2,365-3,524 page faults and 0.13-0.82 s of system time, against 496 and 0.04-0.08 s
//! without purging). A run's working set is steady, so kiln keeps it.

#![allow(unsafe_code)] // one FFI call into the allocator, below

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (libmimalloc-sys names no constant for
/// it); -1 means never purge.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Turns purging off, unless the user chose a delay with mimalloc's own MIMALLOC_PURGE_DELAY.
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set stores an integer in mimalloc's option table; it is valid
        // at any time and on any thread, and -1 is a documented value of this option.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
    }
}

#[cfg(test)]
mod tests {
    /// The option index is mimalloc's enum position, not a named constant: check that it is
    /// the purge delay by its documented default (v3: 1000 ms; v2 would be 10).
    #[test]
    fn option_fifteen_is_the_purge_delay() {
        // SAFETY: reads an integer option.
        let default = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert!(
                default == 1000 || default == -1,
                "purge delay read {default}"
            );
        }
    }
}
