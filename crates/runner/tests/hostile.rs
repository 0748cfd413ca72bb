//! Hostile and careless input: names that try to leave the log root, files that inflate or
//! never end, pictures and layers too large for the machine, closed pipes, signals at awkward
//! moments, exports over other files. Each must end in one clear line and its documented exit
//! code, with memory bounded (a hard address-space limit, `prlimit --as`, not a timing) and
//! nothing written where it does not belong.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

/// `runner` under a hard address-space limit of `gib` GiB: an allocation past it fails (and
/// the runner aborts), so a case that passes used less.
fn runner_within(scratch: &Path, gib: u64) -> Command {
    let plain = runner(scratch);
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--as={}", gib << 30))
        .arg("--")
        .arg(plain.get_program());
    for (key, value) in plain.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    cmd.current_dir(scratch);
    cmd
}

/// Writes a gzip stream of `header` followed by `zeros` zero bytes, without holding them.
fn gzip_bomb(path: &Path, header: &[u8], zeros: usize) {
    let file = std::fs::File::create(path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    gz.write_all(header).unwrap();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..zeros >> 20 {
        gz.write_all(&chunk).unwrap();
    }
    gz.finish().unwrap();
}

/// A valid grey PNG of `side` x `side` black pixels, written row by row.
fn huge_png(path: &Path, side: u32) {
    let mut idat = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let row = vec![0u8; side as usize + 1]; // filter byte 0, then the row
    for _ in 0..side {
        idat.write_all(&row).unwrap();
    }
    let idat = idat.finish().unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        png.extend_from_slice(&body);
        let mut crc = flate2::Crc::new(); // PNG's CRC-32 is gzip's
        crc.update(&body);
        png.extend_from_slice(&crc.sum().to_be_bytes());
    };
    let mut ihdr = side.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &idat);
    chunk(b"IEND", &[]);
    std::fs::write(path, png).unwrap();
}

/// A short synthetic run in `dir/logs`, for the commands that use a trained run.
fn trained_run(dir: &Path) -> PathBuf {
    let file = synthetic_experiment(dir, 1, 200);
    let out = runner(dir)
        .arg(&file)
        .args(["-q", "--logdir"])
        .arg(dir.join("logs"))
        .output()
        .unwrap();
    ok(&out);
    single_run(&dir.join("logs/syn"))
}

/// Waits for `child` at most `limit`; kills it and fails if it is still running then.
fn wait_within(mut child: std::process::Child, limit: Duration, what: &str) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_sweep_name_cannot_leave_the_log_root() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    synthetic_experiment(d, 1, 100);
    let outside = d.join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("summary.md"), "mine").unwrap();
    let logs = d.join("root/logs");
    for name in [
        "../../escape".to_string(),
        outside.display().to_string(),
        String::new(),
    ] {
        let sweep = d.join("s.toml");
        std::fs::write(
            &sweep,
            format!(
                "[sweep]\nname = {name:?}\nbase = \"syn.toml\"\n[sweep.grid]\n\"optimizer.lr\" = [0.1]\n"
            ),
        )
        .unwrap();
        let out = runner(d)
            .args(["sweep", "--logdir"])
            .arg(&logs)
            .arg(&sweep)
            .output()
            .unwrap();
        assert_user_error(&out, &["sweep.name", "plain folder name"]);
    }
    assert!(!logs.exists(), "nothing was written under the log root");
    assert!(!d.join("escape").exists() && !d.join("root/escape").exists());
    assert_eq!(
        std::fs::read_to_string(outside.join("summary.md")).unwrap(),
        "mine"
    );
}

/// A 1 MB training-images file that inflates to 1 GiB, under a 1 GiB address-space limit: read
/// up to what its header promises, then refused (before: inflated whole, 2 GiB and more).
#[test]
fn a_gzip_bomb_is_refused_within_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let file = synthetic_experiment(dir.path(), 1, 200);
    let images = dir.path().join("data/train-images-idx3-ubyte");
    let header = std::fs::read(&images).unwrap()[..16].to_vec();
    std::fs::remove_file(&images).unwrap();
    gzip_bomb(&images.with_extension("gz"), &header, 1 << 30);
    let out = runner_within(dir.path(), 1)
        .arg(&file)
        .arg("--logdir")
        .arg(dir.path().join("logs"))
        .output()
        .unwrap();
    assert_user_error(
        &out,
        &[
            "train-images-idx3-ubyte.gz",
            "longer than the 156816 bytes its header promises",
        ],
    );
    assert!(!dir.path().join("logs").exists());
}

/// `/dev/zero` as a checkpoint or a CSV file is refused at once, not read until memory runs out.
#[test]
fn endless_files_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(dir.path());
    let out = runner_within(dir.path(), 1)
        .arg("eval")
        .arg(&run)
        .args(["--checkpoint", "/dev/zero", "--force"])
        .output()
        .unwrap();
    assert_user_error(&out, &["/dev/zero", "not a regular file"]);

    let csv = dir.path().join("csv.toml");
    std::fs::write(
        &csv,
        "name = \"c\"\n[data]\ndataset = \"csv\"\ntrain_file = \"/dev/zero\"\ntest_file = \"/dev/zero\"\n[optimizer]\nkind = \"sgd\"\n[model]\nlayers = [{ type = \"linear\", units = 2 }]\n",
    )
    .unwrap();
    let out = runner_within(dir.path(), 1).arg(&csv).output().unwrap();
    assert_user_error(&out, &["/dev/zero", "not a regular file"]);
}

/// A small PNG that decodes to 20000 x 20000 pixels is refused from its header, under a
/// 1 GiB limit; one bad picture does not stop the others from being classified.
#[test]
fn predict_refuses_huge_pictures_and_classifies_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(dir.path());
    let huge = dir.path().join("huge.png");
    huge_png(&huge, 20_000);
    assert!(std::fs::metadata(&huge).unwrap().len() < 2 << 20);
    let digit = dir.path().join("digit.png");
    let mut img = image::GrayImage::new(28, 28);
    for y in 8..20 {
        img.put_pixel(14, y, image::Luma([255]));
    }
    img.save(&digit).unwrap();
    let blank = dir.path().join("blank.png");
    image::GrayImage::new(28, 28).save(&blank).unwrap();

    let out = runner_within(dir.path(), 1)
        .arg("predict")
        .arg(&run)
        .arg(&digit)
        .arg(&huge)
        .arg(&blank)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("20000x20000 pixels") && err.contains("--max-pixels"),
        "{err}"
    );
    assert!(err.contains("blank.png is blank"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(stdout(&out).contains("digit.png: "), "{}", stdout(&out));
}

/// A mirror that accepts and never answers: Ctrl-C during the download ends the run at once
/// (before: the first Ctrl-C was ignored and the run hung ten minutes).
#[test]
fn ctrl_c_during_a_stalled_download_exits_at_once() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mirror = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let child = runner(dir.path())
        .arg(FC_ADAM_L2)
        .arg("--logdir")
        .arg(dir.path().join("logs"))
        .env("KILN_MIRRORS", &mirror)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    sigint(&child);
    let out = wait_within(child, Duration::from_secs(10), "Ctrl-C ignored");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted before training began"), "{err}");
    assert!(!dir.path().join("logs").exists());
}

/// Layers too large for the machine are exit 2 before any run folder, naming the layer; the
/// sizes that overflowed or aborted the allocator before.
#[test]
fn networks_larger_than_memory_are_refused_at_plan_time() {
    let dir = tempfile::tempdir().unwrap();
    let file = synthetic_experiment(dir.path(), 1, 100);
    let logs = dir.path().join("logs");
    let run = |sets: &[&str]| {
        let mut cmd = runner_within(dir.path(), 2);
        cmd.arg(&file).arg("--logdir").arg(&logs);
        for s in sets {
            cmd.args(["--set", s]);
        }
        cmd.output().unwrap()
    };
    let huge = "model.layers[1].units=1000000000000";
    assert_user_error(
        &run(&[huge]),
        &[
            "model.layers[1] (linear + relu)",
            "785,000,000,000,000 parameters",
            "KILN_MEMORY_LIMIT",
        ],
    );
    assert_user_error(
        &run(&["model.layers[1].units=100000000000000000000"]),
        &["beyond TOML's whole numbers"],
    );
    assert_user_error(
        &run(&["model.layers[1].units=100000000000000000"]),
        &["model.layers[1] (linear)", "overflows"],
    );
    assert_user_error(
        &run(&[
            "model.layers=[{type=\"conv2d\", filters=8, kernel=3, padding=100000}, {type=\"flatten\"}, {type=\"linear\", units=10}]",
            "model.input=[1, 28, 28]",
        ]),
        &["values per example"],
    );
    assert!(!logs.exists(), "no run folder");
    // KILN_MEMORY_LIMIT lowers the ceiling; inspect warns and still prints the table.
    let out = runner(dir.path())
        .args(["inspect"])
        .arg(&file)
        .env("KILN_MEMORY_LIMIT", "1K")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("warning: ") && stderr(&out).contains("KILN_MEMORY_LIMIT"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("total params"));
}

/// `runner exp.toml | head -1` and `> /dev/full`: the console goes quiet, training completes
/// (before: a panic, exit 101, no result).
#[test]
fn a_closed_or_full_stdout_does_not_stop_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = synthetic_experiment(dir.path(), 3, 200);
    let logs = dir.path().join("logs");
    let mut child = runner(dir.path())
        .arg(&file)
        .arg("--logdir")
        .arg(&logs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap(); // the reader is dropped here: the pipe is closed, as by `head -1`
    assert!(!first.is_empty());
    let out = wait_within(child, Duration::from_secs(120), "training");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(single_run(&logs.join("syn")).join("result.toml").is_file());

    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = runner(dir.path())
        .arg(&file)
        .arg("--logdir")
        .arg(dir.path().join("full"))
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        single_run(&dir.path().join("full/syn"))
            .join("result.toml")
            .is_file()
    );
}

/// `export -o` replaces nothing kiln did not make: not a script beside the weights, not a
/// FIFO; a folder gets model.safetensors in it.
#[test]
fn export_never_destroys_files() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(dir.path());
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    std::fs::write(out_dir.join("notes.py"), "my notes").unwrap();
    let export = |o: &Path, extra: &[&str]| {
        runner(dir.path())
            .arg("export")
            .arg(&run)
            .arg("-o")
            .arg(o)
            .args(extra)
            .output()
            .unwrap()
    };
    assert_user_error(
        &export(&out_dir.join("notes.safetensors"), &[]),
        &["notes.py already exists", "--overwrite"],
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("notes.py")).unwrap(),
        "my notes"
    );
    assert_user_error(
        &export(&out_dir.join("model.py"), &[]),
        &["ending in .safetensors"],
    );
    let fifo = out_dir.join("pipe.safetensors");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    assert_user_error(&export(&fifo, &["--overwrite"]), &["not a regular file"]);
    ok(&export(&out_dir, &[]));
    assert!(out_dir.join("model.safetensors").is_file() && out_dir.join("model.py").is_file());
}

/// A checkpoint of another run is refused unless --force; a run folder that cannot take the
/// TensorBoard file still gets its figures printed, with a warning.
#[test]
fn eval_uses_only_its_own_runs_checkpoints_and_prints_without_tensorboard() {
    let dir = tempfile::tempdir().unwrap();
    let a = trained_run(dir.path());
    let b_dir = dir.path().join("b");
    std::fs::create_dir(&b_dir).unwrap();
    let b = trained_run(&b_dir);
    let other = b.join("checkpoints/best.ckpt");
    let out = runner(dir.path())
        .arg("eval")
        .arg(&a)
        .arg("--checkpoint")
        .arg(&other)
        .output()
        .unwrap();
    assert_user_error(&out, &["a checkpoint of the run", "--force"]);
    assert!(!a.join("eval").exists());
    // `eval` is a file here, so no event file can be made in it (root ignores permissions).
    std::fs::write(a.join("eval"), "").unwrap();
    let out = runner(dir.path())
        .arg("eval")
        .arg(&a)
        .arg("--checkpoint")
        .arg(&other)
        .arg("--force")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("accuracy"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("warning: nothing written to TensorBoard"),
        "{}",
        stderr(&out)
    );
}

/// Two SIGTERMs in quick succession while a sweep starts its runs: it still prints its
/// interrupted line and writes its summary (before: sometimes exit 130 with neither).
#[test]
fn a_sweep_signalled_twice_still_writes_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    synthetic_experiment(dir.path(), 200, 2000);
    let sweep = dir.path().join("s.toml");
    std::fs::write(
        &sweep,
        "[sweep]\nbase = \"syn.toml\"\n[sweep.grid]\n\"optimizer.lr\" = [0.1, 0.01, 0.001]\n",
    )
    .unwrap();
    let logs = dir.path().join("logs");
    let child = runner(dir.path())
        .args(["sweep", "--jobs", "2", "--logdir"])
        .arg(&logs)
        .arg(&sweep)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the sweep never started", || logs.join("s").is_dir());
    for _ in 0..2 {
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
    }
    let out = wait_within(child, Duration::from_secs(60), "the sweep");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("sweep interrupted with 0 of 3"), "{err}");
    assert!(logs.join("s/summary.csv").is_file());
}

/// A temporary file a killed checkpoint write left is removed when the run is resumed.
#[test]
fn resuming_removes_a_killed_writes_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = synthetic_experiment(dir.path(), 1, 200);
    let run = trained_run(dir.path());
    let stale = run.join("checkpoints/.tmp-AbC123");
    std::fs::write(&stale, vec![0u8; 4096]).unwrap();
    let out = runner(dir.path())
        .arg(&file)
        .args(["-q", "--set", "train.epochs=2", "--resume"])
        .arg(&run)
        .arg("--logdir")
        .arg(dir.path().join("logs"))
        .output()
        .unwrap();
    ok(&out);
    assert!(!stale.exists());
}

/// Messages that misled, each now saying what is wrong and where.
#[test]
fn messages_say_what_is_wrong_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = synthetic_experiment(d, 1, 100);
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = runner(d);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let f = file.to_str().unwrap();
    assert_user_error(
        &run(&["inspect", f, "--set", "train.epochz=3"], &[]),
        &["key `train.epochz`:", "did you mean `epochs`"],
    );
    assert_user_error(
        &run(&["inspect", f], &[("KILN_TRAIN__EPOCHZ", "3")]),
        &["KILN_TRAIN__EPOCHZ:"],
    );
    assert_user_error(
        &run(&["inspect", f], &[("KILN_TRAIN_EPOCHS", "3")]),
        &["KILN_TRAIN_EPOCHS is not read", "KILN_TRAIN__EPOCHS"],
    );
    assert_user_error(
        &run(&["inspect", f, "--set", "optimizer.lr=[1,"], &[]),
        &["--set optimizer.lr=[1,", "not valid TOML"],
    );
    assert_user_error(
        &run(
            &["inspect", f, "--set", "train.epochs=18446744073709551615"],
            &[],
        ),
        &["beyond TOML's whole numbers"],
    );
    assert_user_error(
        &run(&[d.to_str().unwrap()], &[]),
        &["is a folder", "runner sweep"],
    );
    assert_user_error(
        &run(&["sweep", "--jobs", "0", d.to_str().unwrap()], &[]),
        &["--jobs 0"],
    );
    assert_user_error(
        &run(
            &[
                f,
                "--set",
                "train.batch_size=1000",
                "--set",
                "train.drop_last=true",
            ],
            &[],
        ),
        &["more than the 100 training examples", "drop_last = true"],
    );
    // A table given whole replaces the file's, and a list item is addressed by its index.
    let out = run(
        &[
            "inspect",
            f,
            "--set",
            "model.layers[1].units=32",
            "--set",
            "init.weight={kind=\"normal\", std=0.1}",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("[32]"), "{}", stdout(&out));
    assert_user_error(
        &run(
            &[
                "inspect",
                f,
                "--set",
                "init.weight={kind=\"default\", std=-1}",
            ],
            &[],
        ),
        &["init.weight.std", "takes no other keys"],
    );
    // A NaN on the very first step comes from the initial weights, not the learning rate.
    let out = run(
        &[f, "--set", "init.weight={kind=\"constant\", value=1e30}"],
        &[],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("initial weights") && !err.contains("learning rate"),
        "{err}"
    );

    // A grid whose key is misspelt fails once, before any run; a random sample of 0 too.
    let sweep = d.join("s.toml");
    std::fs::write(
        &sweep,
        "[sweep]\nbase = \"syn.toml\"\n[sweep.grid]\n\"optimizer.lrr\" = [0.1, 0.2]\n",
    )
    .unwrap();
    assert_user_error(
        &run(&["sweep", sweep.to_str().unwrap()], &[]),
        &["does not load", "optimizer.lrr"],
    );
    assert!(!d.join("logs/s").join("lrr=0.1").exists());
    std::fs::write(
        &sweep,
        "[sweep]\nbase = \"syn.toml\"\nmode = \"random\"\nsamples = 0\n[sweep.grid]\n\"optimizer.lr\" = [0.1]\n",
    )
    .unwrap();
    assert_user_error(
        &run(&["sweep", sweep.to_str().unwrap()], &[]),
        &["samples` is 0"],
    );
    // Two experiments of a folder with one name would share a log folder.
    let study = d.join("study");
    std::fs::create_dir(&study).unwrap();
    std::fs::copy(&file, study.join("a.toml")).unwrap();
    std::fs::copy(&file, study.join("b.toml")).unwrap();
    assert_user_error(
        &run(&["sweep", study.to_str().unwrap()], &[]),
        &["a.toml and", "b.toml both have name = \"syn\""],
    );
}

/// A CSV label of 99 without `classes` names where it is; a BOM is not a header; a one-column
/// file says so.
#[test]
fn csv_mistakes_are_named_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut rows = String::from("\u{feff}");
    for i in 0..20 {
        rows.push_str(&format!("{},{},{}\n", i % 2, i, 20 - i));
    }
    std::fs::write(d.join("train.csv"), &rows).unwrap();
    let mut test = rows.clone();
    test.push_str("99,1,1\n");
    std::fs::write(d.join("test.csv"), &test).unwrap();
    let file = d.join("c.toml");
    std::fs::write(
        &file,
        "name = \"c\"\n[data]\ndataset = \"csv\"\ntrain_file = \"train.csv\"\ntest_file = \"test.csv\"\n[optimizer]\nkind = \"sgd\"\n[model]\nlayers = [{ type = \"linear\", units = 2 }]\n",
    )
    .unwrap();
    let out = runner(d).arg(&file).output().unwrap();
    assert_user_error(
        &out,
        &[
            "has 100 classes",
            "the largest, 99, is first in test example 21",
        ],
    );
    // Without the stray label the BOM file trains on all 20 rows (none taken as a header).
    std::fs::write(d.join("test.csv"), &rows).unwrap();
    let out = runner(d)
        .arg(&file)
        .args(["--set", "train.epochs=1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("20 training"), "{}", stdout(&out));
    std::fs::write(d.join("train.csv"), "1\n0\n").unwrap();
    assert_user_error(
        &runner(d).arg(&file).output().unwrap(),
        &["line 1: one column only"],
    );
}

/// A second Ctrl-C during a long step: the run leaves within about a second, saying either
/// that its checkpoint was saved or what is lost (before: exit 130 at once, silently).
#[test]
fn a_second_ctrl_c_leaves_within_a_second_saying_what_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let file = synthetic_experiment(dir.path(), 1000, 5000);
    let logs = dir.path().join("logs");
    let child = runner(dir.path())
        .arg(&file)
        .arg("--logdir")
        .arg(&logs)
        // Full-batch steps through a wide layer: each takes a good part of a second.
        .args([
            "--set",
            "train.batch_size=\"full\"",
            "--set",
            "model.layers[1].units=2048",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("runner never started", || {
        std::fs::read_dir(logs.join("syn")).is_ok_and(|mut d| d.next().is_some())
    });
    std::thread::sleep(Duration::from_millis(300));
    sigint(&child);
    std::thread::sleep(Duration::from_millis(30));
    sigint(&child);
    let out = wait_within(child, Duration::from_secs(30), "the second Ctrl-C");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted twice") || err.contains("checkpoint saved"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
