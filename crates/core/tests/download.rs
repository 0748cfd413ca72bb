//! The download path against an HTTP server on 127.0.0.1 serving the real MNIST files, a
//! corrupted one and a truncated one (skipped, with a printed reason, without the real MNIST),
//! and CIFAR-10's archive.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use kiln_core::config::DatasetKind;
use kiln_core::data::named::{FILES, Lookup, load_files};

/// Serves `routes` (path -> body) over HTTP/1.0 until the test process ends; returns the base URL.
fn serve(routes: HashMap<String, Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let routes = Arc::new(routes);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let routes = routes.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(&stream);
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    return;
                }
                // Drain the headers.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                let mut out = &stream;
                match routes.get(&path) {
                    Some(body) => {
                        let _ = write!(
                            out,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = out.write_all(body);
                    }
                    None => {
                        let _ = write!(
                            out,
                            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                    }
                }
            });
        }
    });
    base
}

fn real_gz_files() -> Option<Vec<(String, Vec<u8>)>> {
    let Some(dir) = common::real_mnist() else {
        eprintln!(
            "skipped: set KILN_DATA_DIR to the real MNIST (.gz files) to run the download tests"
        );
        return None;
    };
    FILES
        .iter()
        .map(|f| {
            Some((
                format!("{f}.gz"),
                std::fs::read(dir.join(format!("{f}.gz"))).ok()?,
            ))
        })
        .collect()
}

fn lookup(cache: PathBuf, mirrors: Vec<String>) -> Lookup {
    Lookup {
        config_dir: None,
        env_dir: None,
        cache_dir: cache,
        download: true,
        mirrors,
        progress: false,
        stall: std::time::Duration::from_secs(1),
    }
}

/// A server that accepts connections and never answers; returns its base URL.
fn serve_nothing() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream); // open, silent
        }
    });
    base
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut out).unwrap();
    out
}

#[test]
fn downloads_verifies_and_caches_skipping_bad_mirrors() {
    let Some(files) = real_gz_files() else { return };
    // Mirror 1 lacks everything, mirror 2 serves a corrupted label file, mirror 3 is good.
    let empty = serve(HashMap::new());
    let mut corrupt_routes = HashMap::new();
    let (labels_name, labels_gz) = &files[1];
    let mut labels = gunzip(labels_gz);
    labels[100] ^= 1;
    corrupt_routes.insert(format!("/mnist/{labels_name}"), gzip(&labels));
    let corrupt = serve(corrupt_routes);
    let good = serve(
        files
            .iter()
            .map(|(n, b)| (format!("/mnist/{n}"), b.clone()))
            .collect(),
    );

    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().join("mnist");
    let mirrors = vec![
        format!("{empty}/mnist/"),
        format!("{corrupt}/mnist"),
        format!("{good}/mnist/"),
    ];
    let raw = load_files(DatasetKind::Mnist, &lookup(cache_dir.clone(), mirrors)).unwrap();
    assert_eq!(raw.idx[0].dims, vec![60_000, 28, 28]);
    assert_eq!(raw.idx[3].dims, vec![10_000]);
    for f in FILES {
        assert!(cache_dir.join(format!("{f}.gz")).is_file(), "{f} cached");
    }
    // A second load reads the cache: no mirror is needed.
    let raw = load_files(DatasetKind::Mnist, &lookup(cache_dir, vec![])).unwrap();
    assert_eq!(raw.idx[1].data.len(), 60_000);
}

#[test]
fn a_corrupted_or_truncated_download_is_refused_with_a_clear_message() {
    let Some(files) = real_gz_files() else { return };
    let (images_name, images_gz) = &files[2];
    let mut routes: HashMap<String, Vec<u8>> = files
        .iter()
        .map(|(n, b)| (format!("/{n}"), b.clone()))
        .collect();
    // Truncated: half of the gzip stream of the test images.
    routes.insert(
        format!("/{images_name}"),
        images_gz[..images_gz.len() / 2].to_vec(),
    );
    let truncating = serve(routes);
    let cache = tempfile::tempdir().unwrap();
    let err = load_files(
        DatasetKind::Mnist,
        &lookup(cache.path().join("m"), vec![truncating]),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains(images_name) && err.contains("gzip"), "{err}");
    assert!(err.contains("KILN_DATA_DIR"), "says what to do: {err}");
    // Nothing half-written is left under the final name.
    assert!(!cache.path().join("m").join(images_name).exists());

    let mut routes: HashMap<String, Vec<u8>> = files
        .iter()
        .map(|(n, b)| (format!("/{n}"), b.clone()))
        .collect();
    let mut images = gunzip(images_gz);
    images[5000] ^= 0xff;
    routes.insert(format!("/{images_name}"), gzip(&images));
    let corrupting = serve(routes);
    let err = load_files(
        DatasetKind::Mnist,
        &lookup(cache.path().join("c"), vec![corrupting]),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("checksum"), "{err}");
}

#[test]
fn a_damaged_file_in_the_cache_is_named_with_the_fix() {
    let Some(files) = real_gz_files() else { return };
    let cache = tempfile::tempdir().unwrap();
    for (name, bytes) in &files {
        std::fs::write(cache.path().join(name), bytes).unwrap();
    }
    let (name, bytes) = &files[0];
    std::fs::write(cache.path().join(name), &bytes[..bytes.len() - 1000]).unwrap();
    let err = load_files(
        DatasetKind::Mnist,
        &lookup(cache.path().to_path_buf(), vec![]),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains(name.as_str()) && err.contains("delete it"),
        "{err}"
    );
}

/// A mirror that accepts and then sends nothing is given up after the stall time, and the
/// next one is used (before, ureq's ten-minute global timeout held the run).
#[test]
fn a_silent_mirror_is_given_up_and_the_next_one_used() {
    let Some(files) = real_gz_files() else { return };
    let silent = serve_nothing();
    let good = serve(
        files
            .iter()
            .map(|(n, b)| (format!("/{n}"), b.clone()))
            .collect(),
    );
    let cache = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let raw = load_files(
        DatasetKind::Mnist,
        &lookup(cache.path().join("m"), vec![silent.clone(), good]),
    )
    .unwrap();
    assert_eq!(raw.idx[3].dims, vec![10_000]);
    // Four files, one 1-second stall each; far from any network timeout.
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    let err = load_files(
        DatasetKind::Mnist,
        &lookup(cache.path().join("s"), vec![silent]),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("no data for 1 s") && err.contains("stalled"),
        "{err}"
    );
}

/// A hostile mirror's gzip bomb (a valid label file followed by 200 MB of zeros, 200 KB
/// compressed) is read only up to MNIST's size and refused.
#[test]
fn a_gzip_bomb_from_a_mirror_is_cut_at_the_datasets_size() {
    let Some(files) = real_gz_files() else { return };
    let (labels_name, labels_gz) = &files[1];
    let mut bomb = gunzip(labels_gz);
    bomb.resize(bomb.len() + (200 << 20), 0);
    let mut routes: HashMap<String, Vec<u8>> = files
        .iter()
        .map(|(n, b)| (format!("/{n}"), b.clone()))
        .collect();
    routes.insert(format!("/{labels_name}"), gzip(&bomb));
    drop(bomb);
    let hostile = serve(routes);
    let cache = tempfile::tempdir().unwrap();
    let err = load_files(
        DatasetKind::Mnist,
        &lookup(cache.path().join("b"), vec![hostile]),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains(labels_name) && err.contains("longer than the 60008 bytes"),
        "{err}"
    );
}

/// CIFAR-10's archive from a mirror on this machine: the files of the real layout (written
/// here: no registry ships the real CIFAR), so its SHA-256 is not the publisher's. Refused
/// with the URL and the fix; with `[data] verify = false` used with a warning, extracted into
/// the cache, and read from there next time without any server.
#[test]
fn a_cifar_archive_is_checked_by_its_sha256_then_extracted_into_the_cache() {
    let mut tar = tar::Builder::new(Vec::new());
    let files = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    for name in files {
        let bytes: Vec<u8> = (0..10_000 * 3073)
            .map(|i| {
                if i % 3073 == 0 {
                    (i / 3073 % 10) as u8
                } else {
                    9
                }
            })
            .collect();
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(
            &mut header,
            format!("cifar-10-batches-bin/{name}"),
            &bytes[..],
        )
        .unwrap();
    }
    let archive = gzip(&tar.into_inner().unwrap());
    let base = serve(HashMap::from([(
        "/cifar-10-binary.tar.gz".to_string(),
        archive,
    )]));
    let cache = tempfile::tempdir().unwrap();
    let mut config: kiln_core::config::DataConfig =
        toml::from_str("dataset = \"cifar10\"").unwrap();
    let mut lookup = lookup(cache.path().join("cifar10"), vec![base.clone()]);
    let mut warnings = Vec::new();
    let err = kiln_core::data::cifar::load(&config, &lookup, &mut warnings)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains(&format!("{base}/cifar-10-binary.tar.gz does not match"))
            && err.contains("SHA-256"),
        "{err}"
    );
    config.verify = false;
    let dataset = kiln_core::data::cifar::load(&config, &lookup, &mut warnings).unwrap();
    assert_eq!((dataset.train.len(), dataset.test.len()), (50_000, 10_000));
    assert!(warnings[0].contains("verify = false"), "{warnings:?}");
    for name in files {
        assert!(
            cache
                .path()
                .join("cifar10/cifar-10-batches-bin")
                .join(name)
                .is_file()
        );
    }
    lookup.mirrors = vec!["http://127.0.0.1:9/".into()];
    let mut warnings = Vec::new();
    let again = kiln_core::data::cifar::load(&config, &lookup, &mut warnings).unwrap();
    assert_eq!(again.train.labels, dataset.train.labels);
    assert!(warnings.is_empty(), "{warnings:?}");
}
