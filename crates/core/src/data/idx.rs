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
    let bad = |what: String| invalid(path, what);
    if bytes.len() < 4 {
        return Err(bad(format!("only {} bytes long", bytes.len())));
    }
    check_magic(&bytes[..4]).map_err(bad)?;
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

fn invalid(path: &Path, what: String) -> Error {
    Error::Data(format!(
        "{} is not a valid IDX file: {what}; delete it so that kiln fetches it again, or replace it with the original",
        path.display()
    ))
}

/// Magic: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions (1-4).
fn check_magic(magic: &[u8]) -> std::result::Result<(), String> {
    if magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || magic[3] == 0 || magic[3] > 4 {
        return Err(format!(
            "wrong magic number {:02x}{:02x}{:02x}{:02x} (expected 0000080N: unsigned bytes, N dimensions)",
            magic[0], magic[1], magic[2], magic[3]
        ));
    }
    Ok(())
}

/// The most an IDX file may hold, whatever its header says: kiln keeps a dataset in memory,
/// and a header (or a gzip stream) claiming more is damaged or hostile.
pub const MAX_BYTES: u64 = 4 << 30;

/// Reads an IDX file, decompressing it when its name ends in `.gz`, and returns its bytes
/// (header included). Memory is bounded before it is spent: the header is read first, and
/// the body is read up to what the header promises and no further, so a gzip bomb or an
/// endless file costs at most `limit` (or [`MAX_BYTES`]) bytes. `limit` is the exact size a
/// known dataset's file has (MNIST's); a file of another size is refused.
pub fn read(path: &Path, limit: Option<u64>) -> Result<Vec<u8>> {
    let cannot = |e: std::io::Error| Error::Data(format!("cannot read {}: {e}", path.display()));
    let (file, _) = crate::files::open_regular(path).map_err(cannot)?;
    let reader = std::io::BufReader::new(file);
    if path.extension().is_some_and(|e| e == "gz") {
        read_from(flate2::read::GzDecoder::new(reader), path, limit)
    } else {
        read_from(reader, path, limit)
    }
}

/// [`read`] over any stream of IDX bytes (a decoder over a download, say); `path` names it in
/// errors.
pub fn read_from(mut reader: impl Read, path: &Path, limit: Option<u64>) -> Result<Vec<u8>> {
    let bad = |what: String| invalid(path, what);
    let gzip = if path.extension().is_some_and(|e| e == "gz") {
        "its gzip stream "
    } else {
        "it "
    };
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => bad(format!("{gzip}ends early (truncated)")),
        _ => bad(format!("{gzip}cannot be read or decompressed ({e})")),
    };
    let mut head = vec![0u8; 4];
    // Cut short before its dimensions end: name the header, the part that says how long it is.
    let in_header = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => bad(format!("{gzip}ends in its header (truncated)")),
        _ => io(e),
    };
    reader.read_exact(&mut head).map_err(in_header)?;
    check_magic(&head).map_err(bad)?;
    let rank = head[3] as usize;
    head.resize(4 + 4 * rank, 0);
    reader.read_exact(&mut head[4..]).map_err(in_header)?;
    let body: u64 = head[4..]
        .chunks_exact(4)
        .map(|c| u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
        .try_fold(1u64, |acc, d| acc.checked_mul(d))
        .unwrap_or(u64::MAX);
    let total = body.saturating_add(head.len() as u64);
    let cap = limit.unwrap_or(MAX_BYTES);
    if total > cap {
        return Err(bad(format!(
            "its header promises {total} bytes, more than the {cap} bytes {}",
            if limit.is_some() {
                "this dataset's file holds"
            } else {
                "kiln reads from one IDX file"
            }
        )));
    }
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(total as usize)
        .map_err(|_| bad(format!("{total} bytes do not fit in memory")))?;
    bytes.extend_from_slice(&head);
    (&mut reader)
        .take(body)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if (bytes.len() as u64) < total {
        return Err(bad(format!(
            "its header promises {total} bytes but it holds {} (truncated)",
            bytes.len()
        )));
    }
    // One byte more than promised, or a damaged gzip trailer (checked at the stream's end).
    if reader.read(&mut [0u8; 1]).map_err(io)? != 0 {
        return Err(bad(format!(
            "it is longer than the {total} bytes its header promises"
        )));
    }
    if limit.is_some_and(|l| l != total) {
        return Err(bad(format!(
            "it holds {total} bytes where this dataset's file holds {}",
            limit.unwrap_or(0)
        )));
    }
    Ok(bytes)
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

    fn gz(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    fn read_gz(gz: &[u8], limit: Option<u64>) -> Result<Vec<u8>> {
        read_from(flate2::read::GzDecoder::new(gz), Path::new("f.gz"), limit)
    }

    #[test]
    fn reads_what_the_header_promises_and_no_more() {
        let file = encode(&[3, 4], &[9; 12]);
        assert_eq!(read_gz(&gz(&file), None).unwrap(), file);
        assert_eq!(read_gz(&gz(&file), Some(24)).unwrap(), file);
        let err = |bytes: &[u8], limit| read_gz(&gz(bytes), limit).unwrap_err().to_string();
        assert!(err(&file[..15], None).contains("truncated"));
        let mut long = file.clone();
        long.push(0);
        assert!(err(&long, None).contains("longer than the 24 bytes"));
        assert!(err(&file, Some(23)).contains("more than the 23 bytes this dataset"));
        assert!(err(&file, Some(25)).contains("where this dataset's file holds 25"));
        assert!(err(b"\0\0\x0d\x01", None).contains("magic"));
        // A header claiming 4 billion^4 bytes is refused before anything is allocated.
        let huge = encode(&[u32::MAX as usize; 4], &[]);
        assert!(err(&huge, None).contains("more than the 4294967296 bytes kiln reads"));
        // A damaged gzip trailer (the CRC) is found at the stream's end.
        let mut bad_crc = gz(&file);
        let n = bad_crc.len();
        bad_crc[n - 6] ^= 1;
        let e = read_gz(&bad_crc, None).unwrap_err().to_string();
        assert!(e.contains("decompressed"), "{e}");
    }

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        let err = read(Path::new("/dev/zero"), None).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }
}
