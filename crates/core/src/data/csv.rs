//! CSV datasets in the form of the common `mnist_train.csv`: one example per line, the label in
//! the first column, then one number per input value. A first line that is not numeric is taken
//! as a header and skipped.

use std::path::Path;

use crate::error::{Error, Result};

/// The raw contents of one CSV split.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvSplit {
    /// Values per example (columns after the label).
    pub features: usize,
    /// Row-major `[examples, features]`, as written in the file.
    pub values: Vec<f32>,
    pub labels: Vec<u32>,
}

/// The largest CSV file kiln reads: its values take up to twice its size in memory (float32
/// per one-digit cell and comma), and beyond this a binary format (IDX) is the better choice.
pub const MAX_BYTES: u64 = 2 << 30;

/// Reads a CSV file. Every row must have as many columns as the first. The file must be a
/// regular file of at most [`MAX_BYTES`], checked before it is read.
pub fn read(path: &Path) -> Result<CsvSplit> {
    let cannot = |e: std::io::Error| {
        Error::Data(format!(
            "cannot read the CSV file {}: {e}; check [data] train_file / test_file",
            path.display()
        ))
    };
    let (file, len) = crate::files::open_regular(path).map_err(cannot)?;
    if len > MAX_BYTES {
        return Err(Error::Data(format!(
            "{} is {} bytes, more than the {MAX_BYTES} kiln reads from a CSV file; split it, or convert it to IDX files (dataset = \"idx\")",
            path.display(),
            len
        )));
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_BYTES), &mut text)
        .map_err(cannot)?;
    parse(&text, path)
}

/// Parses CSV text; `path` only names the file in errors.
pub fn parse(text: &str, path: &Path) -> Result<CsvSplit> {
    let mut features = None;
    let mut values = Vec::new();
    let mut labels = Vec::new();
    // A byte-order mark (Excel's UTF-8) is not part of the first cell.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if i == 0 && cells.iter().any(|c| c.parse::<f64>().is_err()) {
            continue; // header
        }
        let width = *features.get_or_insert(cells.len().saturating_sub(1));
        if width == 0 {
            return Err(Error::Data(format!(
                "{} line {line_no}: one column only; each row is a label, then one value per input",
                path.display()
            )));
        }
        if cells.len() != width + 1 {
            return Err(Error::Data(format!(
                "{} line {line_no}: {} columns, expected {} (a label then {width} values)",
                path.display(),
                cells.len(),
                width + 1
            )));
        }
        let label: u32 = cells[0].parse().map_err(|_| {
            Error::Data(format!(
                "{} line {line_no}: the label {:?} is not a whole number of 0 or more",
                path.display(),
                cells[0]
            ))
        })?;
        labels.push(label);
        for (col, cell) in cells[1..].iter().enumerate() {
            let v: f32 = cell
                .parse()
                .ok()
                .filter(|v: &f32| v.is_finite())
                .ok_or_else(|| {
                    Error::Data(format!(
                        "{} line {line_no}, column {}: {cell:?} is not a number",
                        path.display(),
                        col + 2
                    ))
                })?;
            values.push(v);
        }
    }
    let Some(features) = features.filter(|_| !labels.is_empty()) else {
        return Err(Error::Data(format!("{} has no data rows", path.display())));
    };
    Ok(CsvSplit {
        features,
        values,
        labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rows_and_skips_a_header() {
        let s = parse("label,p1,p2\n3,0,255\n7,1.5,2\n", Path::new("t.csv")).unwrap();
        assert_eq!(s.features, 2);
        assert_eq!(s.labels, vec![3, 7]);
        assert_eq!(s.values, vec![0.0, 255.0, 1.5, 2.0]);
    }

    #[test]
    fn names_the_line_of_a_short_row() {
        let err = parse("1,2,3\n4,5\n", Path::new("t.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("t.csv line 2") && err.contains("expected 3"),
            "{err}"
        );
    }

    #[test]
    fn names_line_and_column_of_a_non_numeric_cell() {
        let err = parse("1,2,3\n4,5,x\n", Path::new("t.csv"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2, column 3"), "{err}");
    }

    #[test]
    fn refuses_negative_labels_and_empty_files() {
        assert!(parse("1,2\n-1,2\n", Path::new("t.csv")).is_err());
        assert!(parse("", Path::new("t.csv")).is_err());
        assert!(parse("a,b\n", Path::new("t.csv")).is_err());
        let err = parse("1\n2\n", Path::new("t.csv")).unwrap_err().to_string();
        assert!(err.contains("line 1: one column only"), "{err}");
    }

    /// A byte-order mark on a file without a header must not make its first row look like one.
    #[test]
    fn a_byte_order_mark_is_not_a_header() {
        let s = parse("\u{feff}3,0,255\n7,1,2\n", Path::new("t.csv")).unwrap();
        assert_eq!(s.labels, vec![3, 7]);
    }

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        let err = read(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }
}
