//! HTTP download with a progress bar, and atomic writes into the cache.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::{Error, Result};

/// No dataset file kiln fetches is larger than this; a server sending more is refused.
const MAX_BYTES: u64 = 256 << 20;

/// How long a download may go without receiving a byte before the mirror is given up.
pub const STALL: Duration = Duration::from_secs(30);

/// Downloads `url` into memory. Errors are short strings naming the URL (one per mirror tried).
/// A server that accepts and then sends nothing for `stall` is given up (the transfer runs on
/// its own thread, watched here; ureq's timeouts bound whole phases, not the gap between two
/// reads, so a slow but live transfer would be cut by them and a dead one kept for minutes).
pub fn get(url: &str, progress: bool, stall: Duration) -> std::result::Result<Vec<u8>, String> {
    let received = Arc::new(AtomicU64::new(0));
    let (done, result) = mpsc::channel();
    {
        let (url, received) = (url.to_string(), received.clone());
        std::thread::spawn(move || {
            // The receiver is gone when the download was given up: nothing to report to.
            let _ = done.send(transfer(&url, progress, &received));
        });
    }
    let (mut seen, mut since) = (0, Instant::now());
    loop {
        match result.recv_timeout(Duration::from_millis(100)) {
            Ok(outcome) => return outcome,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(format!("{url}: the download thread ended without a result"));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = received.load(Ordering::Relaxed);
                if now != seen {
                    (seen, since) = (now, Instant::now());
                } else if since.elapsed() >= stall {
                    return Err(format!(
                        "{url}: no data for {} s after {seen} bytes (the server stalled)",
                        stall.as_secs()
                    ));
                }
            }
        }
    }
}

fn transfer(
    url: &str,
    progress: bool,
    received: &AtomicU64,
) -> std::result::Result<Vec<u8>, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| format!("{url}: {e}"))?;
    let length = response.body().content_length();
    let bar = if progress {
        let bar = ProgressBar::with_draw_target(length, ProgressDrawTarget::stdout());
        bar.set_style(
            ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(format!("downloading {url}"));
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut reader = response.body_mut().with_config().limit(MAX_BYTES).reader();
    let mut out = Vec::with_capacity(length.unwrap_or(1 << 20).min(MAX_BYTES) as usize);
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = reader.read(&mut chunk).map_err(|e| format!("{url}: {e}"))?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&chunk[..n]);
        received.fetch_add(n as u64, Ordering::Relaxed);
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    if let Some(length) = length.filter(|&l| l != out.len() as u64) {
        return Err(format!("{url}: got {} of {length} bytes", out.len()));
    }
    Ok(out)
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so that a
/// crash never leaves a half-written file under the final name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| Error::io("cannot create a temporary file in", dir, e))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::io("cannot write", path, e))?;
    tmp.persist(path)
        .map_err(|e| Error::io("cannot rename the download to", path, e.error))?;
    Ok(())
}
