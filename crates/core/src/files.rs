//! Opening a file the user named, for reading: only a regular file. A device (`/dev/zero`)
//! reads forever and a FIFO blocks on open, so both are refused before they are opened;
//! readers then bound what they read by the size returned.

use std::fs::File;
use std::io;
use std::path::Path;

/// The file at `path` and its size; `Err` when it is not a regular file (a device, a folder,
/// a FIFO), with a message that completes "cannot read X: ...".
pub fn open_regular(path: &Path) -> io::Result<(File, u64)> {
    let not_regular = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a device, a folder or a pipe)",
        )
    };
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    Ok((file, meta.len()))
}

/// The whole of the regular file at `path` if it holds at most `max` bytes; `Err` (completing
/// "cannot read X: ...") when it is larger, so nothing beyond `max` is ever allocated.
pub fn read_at_most(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let (file, len) = open_regular(path)?;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("it is {len} bytes, more than the {max} expected"),
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("it grew past the {max} bytes expected while being read"),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_open() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"abc").unwrap();
        assert_eq!(open_regular(&file).unwrap().1, 3);
        for other in [Path::new("/dev/zero"), dir.path()] {
            let err = open_regular(other).unwrap_err().to_string();
            assert!(err.contains("not a regular file"), "{err}");
        }
        assert!(open_regular(&dir.path().join("missing")).is_err());
    }
}
