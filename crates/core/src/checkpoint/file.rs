//! The checkpoint file: a fixed header (magic, format, body length, CRC-32 of the body) and a
//! CBOR body. The header lets a reader tell a truncated or damaged file from a good one
//! before decoding anything, and name what is wrong.

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"KILNCKPT";
/// Bumped when the body's layout changes incompatibly.
pub const FORMAT: u32 = 1;
const HEADER: usize = 8 + 4 + 8 + 4;

/// Encodes `value` as a checkpoint file's bytes.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    ciborium::into_writer(value, &mut body)
        .map_err(|e| Error::Run(format!("cannot encode a checkpoint: {e}")))?;
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a checkpoint file's bytes; `path` only names the file in errors.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], path: &Path) -> Result<T> {
    let bad = |why: String| Error::Data(format!("checkpoint {} {why}", path.display()));
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(bad(
            "is not a kiln checkpoint (no KILNCKPT header; truncated or another file)".into(),
        ));
    }
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4]));
    let format = word(8);
    let length = u64::from_le_bytes(bytes[12..20].try_into().unwrap_or([0; 8]));
    let crc = word(20);
    if format != FORMAT {
        return Err(bad(format!(
            "has format {format}, this kiln reads format {FORMAT}; use the kiln that wrote it"
        )));
    }
    let body = &bytes[HEADER..];
    if body.len() as u64 != length {
        return Err(bad(format!(
            "is truncated or damaged: its header announces {length} bytes of data, the file holds {}",
            body.len()
        )));
    }
    if crc32fast::hash(body) != crc {
        return Err(bad(
            "is damaged: its checksum does not match its data".into()
        ));
    }
    ciborium::from_reader(body).map_err(|e| bad(format!("cannot be decoded: {e}")))
}

/// Reads a checkpoint file whole, after checking that it is a regular file whose size is the
/// header's plus the body length the header announces: a wrong file is named, never read
/// into memory first. The header's own checks (magic, format) are [`decode`]'s.
pub fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let cannot = |e: std::io::Error| {
        Error::Data(format!(
            "cannot read the checkpoint {} ({e})",
            path.display()
        ))
    };
    let (mut file, len) = crate::files::open_regular(path).map_err(cannot)?;
    let mut header = [0u8; HEADER];
    let got = read_up_to(&mut file, &mut header).map_err(cannot)?;
    if got < HEADER || &header[..8] != MAGIC {
        // decode names the problem from these bytes alone.
        return Ok(header[..got].to_vec());
    }
    let length = u64::from_le_bytes(header[12..20].try_into().unwrap_or([0; 8]));
    let expected = (HEADER as u64).saturating_add(length);
    if len != expected {
        return Err(Error::Data(format!(
            "checkpoint {} is truncated or damaged: its header announces {length} bytes of data, the file holds {}",
            path.display(),
            len.saturating_sub(HEADER as u64)
        )));
    }
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(expected as usize).map_err(|_| {
        Error::Data(format!(
            "checkpoint {} ({expected} bytes) does not fit in memory",
            path.display()
        ))
    })?;
    bytes.extend_from_slice(&header);
    std::io::Read::read_to_end(&mut std::io::Read::take(&mut file, length), &mut bytes)
        .map_err(cannot)?;
    Ok(bytes)
}

/// Reads into `buf` until it is full or the file ends; the number of bytes read.
fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match std::io::Read::read(file, &mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// Writes `bytes` to `path` so that `path` is either its old content or all of the new one,
/// never a part: a temporary file in the same folder, synced, then renamed over `path`.
/// A path that exists as anything but a regular file (a device, a folder, a link) is refused:
/// renaming over it would replace what kiln did not create.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && !meta.is_file()
    {
        return Err(Error::Config(format!(
            "{} exists and is not a regular file (a folder, a device or a link); kiln writes only files it can replace whole: choose another path",
            path.display()
        )));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| Error::io("cannot create a temporary file in", dir, e))?;
    // A temporary file is private (0600); what kiln writes is as readable as any other file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = tmp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::io("cannot write the checkpoint", path, e))?;
    tmp.persist(path)
        .map_err(|e| Error::io("cannot rename the checkpoint into", path, e.error))?;
    // The rename itself reaches the disk with the folder's metadata; best effort (not every
    // filesystem lets a folder be synced).
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_truncated_or_flipped_files() {
        let value = (42u32, vec![1.5f32; 100], "x".to_string());
        let bytes = encode(&value).unwrap();
        let path = Path::new("c.ckpt");
        let back: (u32, Vec<f32>, String) = decode(&bytes, path).unwrap();
        assert_eq!(back, value);

        let truncated = decode::<(u32, Vec<f32>, String)>(&bytes[..bytes.len() - 7], path);
        let message = truncated.unwrap_err().to_string();
        assert!(message.contains("truncated"), "{message}");
        let header_only = decode::<(u32, Vec<f32>, String)>(&bytes[..10], path);
        assert!(
            header_only
                .unwrap_err()
                .to_string()
                .contains("not a kiln checkpoint")
        );

        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        let message = decode::<(u32, Vec<f32>, String)>(&flipped, path)
            .unwrap_err()
            .to_string();
        assert!(message.contains("checksum"), "{message}");
    }

    #[test]
    fn reading_is_bounded_by_the_header_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.ckpt");
        let bytes = encode(&(1u8, "x".to_string())).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read_bounded(&path).unwrap(), bytes);
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0; 10]);
        std::fs::write(&path, &longer).unwrap();
        let err = read_bounded(&path).unwrap_err().to_string();
        assert!(err.contains("truncated or damaged"), "{err}");
        let err = read_bounded(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a regular file"), "{err}");
        std::fs::write(&path, b"short").unwrap();
        let err = decode::<(u8, String)>(&read_bounded(&path).unwrap(), &path).unwrap_err();
        assert!(err.to_string().contains("not a kiln checkpoint"), "{err}");
    }

    #[test]
    fn atomic_write_replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.ckpt");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        let err = write_atomic(dir.path(), b"x").unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&path, &link).unwrap();
            assert!(write_atomic(&link, b"x").is_err());
            assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        }
    }
}
