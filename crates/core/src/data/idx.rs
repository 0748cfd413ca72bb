//! The IDX format of MNIST and Fashion-MNIST: a magic number, big-endian dimensions, then
//! unsigned bytes.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// A parsed IDX file of unsigned bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Parses IDX bytes (already decompressed), keeping their buffer: the header is moved out in
/// place rather than the body copied (MNIST's training images are 47 MB, and fresh memory is
/// what start-up spends its time on). `path` only names the file in errors.
pub fn parse(mut bytes: Vec<u8>, path: &Path) -> Result<Idx> {
    let bad = |what: String| {
        Error::Data(format!(
            "{} is not a valid IDX file: {what}; delete it so that kiln fetches it again, or replace it with the original",
            path.display()
        ))
    };
    if bytes.len() < 4 {
        return Err(bad(format!("only {} bytes long", bytes.len())));
    }
    // Magic: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions.
    if bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 || bytes[3] == 0 || bytes[3] > 4 {
        return Err(bad(format!(
            "wrong magic number {:02x}{:02x}{:02x}{:02x} (expected 0000080N: unsigned bytes, N dimensions)",
            bytes[0], bytes[1], bytes[2], bytes[3]
        )));
    }
    let rank = bytes[3] as usize;
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(bad("truncated in its header".into()));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
    let body = bytes.len() - header;
    if body != expected {
        return Err(bad(format!(
            "dimensions {dims:?} promise {expected} bytes of data but the file has {body} (truncated or damaged)"
        )));
    }
    bytes.drain(..header);
    Ok(Idx { dims, data: bytes })
}

/// Reads a file and decompresses it when its name ends in `.gz`.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path)
        .map_err(|e| Error::Data(format!("cannot read {}: {e}", path.display())))?;
    if path.extension().is_some_and(|e| e == "gz") {
        gunzip(&raw).map_err(|e| {
            Error::Data(format!(
                "{} is not a readable gzip file ({e}); it is probably truncated: delete it so that kiln fetches it again, or replace it",
                path.display()
            ))
        })
    } else {
        Ok(raw)
    }
}

/// Decompresses gzip bytes.
pub fn gunzip(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    // Best effort: a damaged trailer may claim gigabytes, and failing to reserve them must
    // leave decompression to grow the buffer, not abort the process.
    let _ = out.try_reserve_exact(decompressed_size_hint(raw));
    flate2::read::GzDecoder::new(raw).read_to_end(&mut out)?;
    Ok(out)
}

/// The size gzip's trailer records (ISIZE, the length modulo 2^32), so that the output is
/// allocated once at its size. Only a hint: capped at deflate's best ratio (1032:1), since a
/// damaged trailer must not make kiln reserve memory the stream cannot fill.
fn decompressed_size_hint(raw: &[u8]) -> usize {
    let Some(trailer) = raw.len().checked_sub(4).map(|at| &raw[at..]) else {
        return 0;
    };
    let isize = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]) as usize;
    isize.min(raw.len().saturating_mul(1032))
}

/// Writes an IDX file of unsigned bytes (used by tests and tools that make small datasets).
pub fn encode(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_images() {
        let data: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8).collect();
        let idx = parse(encode(&[2, 3, 4], &data), Path::new("x")).unwrap();
        assert_eq!(idx.dims, vec![2, 3, 4]);
        assert_eq!(idx.data, data);
    }

    #[test]
    fn refuses_wrong_magic() {
        let mut bytes = encode(&[2], &[1, 2]);
        bytes[2] = 0x0d; // float type code
        let err = parse(bytes, Path::new("labels")).unwrap_err().to_string();
        assert!(err.contains("labels") && err.contains("magic"), "{err}");
    }

    #[test]
    fn refuses_truncated_body() {
        let bytes = encode(&[10], &[0; 10]);
        let err = parse(bytes[..bytes.len() - 3].to_vec(), Path::new("f"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("promise 10 bytes") && err.contains("has 7"),
            "{err}"
        );
    }

    #[test]
    fn refuses_truncated_header_and_tiny_files() {
        assert!(parse(vec![0, 0, 8, 3, 0, 0], Path::new("f")).is_err());
        assert!(parse(vec![0, 0], Path::new("f")).is_err());
        assert!(parse(vec![], Path::new("f")).is_err());
    }

    #[test]
    fn gunzip_refuses_truncated_stream() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&[7u8; 1000]).unwrap();
        let bytes = gz.finish().unwrap();
        assert_eq!(decompressed_size_hint(&bytes), 1000);
        let out = gunzip(&bytes).unwrap();
        assert_eq!((out.len(), out.capacity()), (1000, 1000), "allocated once");
        assert_eq!(out, vec![7u8; 1000]);
        assert!(gunzip(&bytes[..bytes.len() / 2]).is_err());
    }
}
