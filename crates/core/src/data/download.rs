//! HTTP download with a progress bar, and atomic writes into the cache.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::{Error, Result};

/// No dataset file kiln fetches is larger than this; a server sending more is refused.
const MAX_BYTES: u64 = 256 << 20;

/// Downloads `url` into memory. Errors are short strings naming the URL (one per mirror tried).
pub fn get(url: &str, progress: bool) -> std::result::Result<Vec<u8>, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
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
    let mut out = Vec::with_capacity(length.unwrap_or(1 << 20) as usize);
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = reader.read(&mut chunk).map_err(|e| format!("{url}: {e}"))?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&chunk[..n]);
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
