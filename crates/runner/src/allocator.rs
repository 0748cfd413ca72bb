//! The process's allocator: mimalloc, told to keep the memory a run frees.
//!
//! Training frees and allocates the same activation-sized buffers (MBs; ~100 MB a full-batch
//! MNIST step) every step. By default mimalloc hands freed memory back to the kernel after a
//! delay ("purging"), and the next step page-faults it in again and the kernel zeroes it: on
//! this project's VM that was most of a full-batch step's system time (sigmoid_fullbatch, 6
//! steps: 2,365-3,524 page faults and 0.13-0.82 s of system time, against 496 and 0.04-0.08 s
//! without purging). A run's working set is steady, so kiln keeps it.
//!
//! It also turns transparent huge pages off for the process. mimalloc asks for them
//! (`MADV_HUGEPAGE`), so each first touch of its memory had the kernel zero a whole 2 MB page.
//! On this project's VM, right after another process freed a lot of memory (the PyTorch runs
//! of `bench/compare.sh`), the host hands memory back slowly: sigmoid_fullbatch's first epoch
//! (one full-batch step) then took 2.0-2.1 s with 2.5-2.7 s of system time, against 0.22-0.24 s
//! and 0.16-0.19 s without huge pages (three alternations, each after `bench/torch_ref.py
//! sigmoid_fullbatch tutorial 1`). Peak RSS also drops (fc_adam_l2: 167 -> 128 MB), since
//! partly used 2 MB pages no longer count whole. After its first steps a run allocates nothing
//! new, so the pages' size hardly matters to its speed (fc_adam_l2 and sigmoid_fullbatch
//! epochs unchanged, interleaved A/B).

#![allow(unsafe_code)] // FFI calls into the allocator, below

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (libmimalloc-sys names no constant for
/// it); -1 means never purge.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Turns purging and transparent huge pages off, unless the user chose otherwise with
/// mimalloc's own MIMALLOC_PURGE_DELAY or MIMALLOC_ALLOW_THP.
pub fn configure() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set stores an integer in mimalloc's option table; it is valid
        // at any time and on any thread, and -1 is a documented value of this option.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
    }
    // mimalloc reads its THP option once, as it starts (before `main`), and then disables THP
    // with this same prctl; here it is done for it. Faults from now on get 4 KiB pages,
    // whatever mimalloc advised; a sweep's runs inherit the setting.
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        let _ = nix::sys::prctl::set_thp_disable(true);
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

    #[cfg(target_os = "linux")]
    #[test]
    fn configure_turns_transparent_huge_pages_off() {
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
            super::configure();
            assert_eq!(nix::sys::prctl::get_thp_disable(), Ok(true));
        }
    }
}
