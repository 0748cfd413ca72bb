//! The child processes of a sweep, so that Ctrl-C stops them together and cleanly.
//!
//! Each child runs in its own process group: a Ctrl-C at the terminal reaches only the sweep,
//! which forwards to every child as many SIGINTs as it received itself (one: the child ends
//! its step and checkpoints; two: it gives that a second and leaves). A child whose sweep is killed outright gets SIGTERM from
//! the kernel (see [`interrupt_when_parent_dies`]), so no run goes on unwatched.

use std::collections::{HashMap, HashSet};
use std::io;
use std::process::{Command, Output};
use std::sync::Mutex;

/// The children running now, and those already asked to stop.
#[derive(Default)]
pub struct Children {
    running: Mutex<HashSet<u32>>,
    /// SIGINTs sent to each child.
    interrupted: Mutex<HashMap<u32, usize>>,
}

impl Children {
    /// Runs `cmd` to completion like [`Command::output`], known to [`Children::interrupt`]
    /// meanwhile.
    pub fn output(&self, cmd: &mut Command) -> io::Result<Output> {
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(cmd, 0);
        let child = cmd.spawn()?;
        let pid = child.id();
        if let Ok(mut running) = self.running.lock() {
            running.insert(pid);
        }
        let output = child.wait_with_output();
        if let Ok(mut running) = self.running.lock() {
            running.remove(&pid);
        }
        output
    }

    /// Sends SIGINT to every running child until it has had `signals` of them (the number the
    /// sweep received), so each child sees what the user asked for.
    pub fn interrupt(&self, signals: usize) {
        let (Ok(running), Ok(mut interrupted)) = (self.running.lock(), self.interrupted.lock())
        else {
            return;
        };
        for &pid in running.iter() {
            let sent = interrupted.entry(pid).or_insert(0);
            if *sent < signals {
                *sent += 1;
                send_sigint(pid);
            }
        }
    }
}

#[cfg(unix)]
fn send_sigint(pid: u32) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    // The child may have exited since it was listed; nothing to do then.
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGINT);
}

#[cfg(not(unix))]
fn send_sigint(_pid: u32) {}

/// Called by a run that a sweep started: the kernel sends it SIGTERM (handled like Ctrl-C)
/// if the sweep dies without forwarding an interrupt, e.g. when it is killed with SIGKILL.
pub fn interrupt_when_parent_dies() {
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM);
}
