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

/// Writes `bytes` to `path` so that `path` is either its old content or all of the new one,
/// never a part: a temporary file in the same folder, synced, then renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
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
    fn atomic_write_replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.ckpt");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }
}
