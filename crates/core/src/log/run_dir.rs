//! The run folder: `<root>/<experiment>/<run-id>/`, never reusing an existing one. Its
//! `<experiment>` part follows [`crate::folder_name`]'s rule (checked with the config).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// Creates a fresh run folder under `root/name/`, named by the UTC start time
/// (`2026-11-24_19-36-01`), with `-2`, `-3`, ... appended if that name is taken.
pub fn create(root: &Path, name: &str) -> Result<PathBuf> {
    let parent = root.join(name);
    std::fs::create_dir_all(&parent).map_err(|e| {
        Error::Config(format!(
            "cannot create the log folder {} ({e}); choose another with --logdir",
            parent.display()
        ))
    })?;
    let stamp = utc_stamp(SystemTime::now());
    for n in 1.. {
        let id = if n == 1 {
            stamp.clone()
        } else {
            format!("{stamp}-{n}")
        };
        let dir = parent.join(id);
        // create_dir (not _all) fails if the folder exists: two runs can never share one.
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Error::Config(format!(
                    "cannot create the run folder {} ({e}); choose another log root with --logdir",
                    dir.display()
                )));
            }
        }
    }
    unreachable!("the loop above returns")
}

/// `YYYY-MM-DD_HH-MM-SS` in UTC.
fn utc_stamp(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}_{:02}-{:02}-{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 -> (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stamps_a_known_date() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_549_000);
        assert_eq!(utc_stamp(t), "2026-11-24_19-36-40");
        assert_eq!(utc_stamp(UNIX_EPOCH), "1970-01-01_00-00-00");
    }

    #[test]
    fn never_reuses_a_folder() {
        let root = tempfile::tempdir().unwrap();
        let a = create(root.path(), "exp").unwrap();
        let b = create(root.path(), "exp").unwrap();
        assert_ne!(a, b);
        assert!(a.is_dir() && b.is_dir());
    }
}
