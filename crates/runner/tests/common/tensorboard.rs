//! The real TensorBoard server over a test's log folder, asked through its HTTP data API what
//! it shows: what a user sees, read with the server's default Rust ("fast") data loader, not
//! the legacy `EventAccumulator`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `tensorboard` process; stopped (by its process id) when dropped.
pub struct TensorBoard {
    child: Child,
    base: String,
    /// Everything the server printed, for failure messages.
    log: Arc<Mutex<String>>,
}

impl TensorBoard {
    /// Starts TensorBoard from the Python environment `python` (`KILN_TB_PYTHON`; .ci/run
    /// makes one) on a free loopback port and waits until it listens.
    pub fn start(python: &std::ffi::OsStr, logdir: &Path) -> TensorBoard {
        let mut child = Command::new(python)
            .args(["-m", "tensorboard.main", "--logdir"])
            .arg(logdir)
            // Port 0: the system picks a free one, and TensorBoard prints it.
            .args(["--host", "127.0.0.1", "--port", "0"])
            // The default loader where it exists (x86_64, aarch64 Linux); saying so makes a
            // machine without it fail here rather than test the legacy loader instead.
            .arg("--load_fast=true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start tensorboard");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
                if let Some(url) = line
                    .split_whitespace()
                    .find(|w| w.starts_with("http://127.0.0.1:"))
                {
                    let _ = tx.send(url.trim_end_matches('/').to_string());
                }
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(90)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                panic!("tensorboard did not start: {}", log.lock().unwrap());
            }
        };
        TensorBoard { child, base, log }
    }

    /// GET `path` (e.g. `/data/runs`) as text, with its status.
    pub fn get_text(&self, path: &str) -> (u16, String) {
        self.read(ureq::get(format!("{}{path}", self.base)).call())
    }

    /// GET `path` as bytes.
    pub fn get_bytes(&self, path: &str) -> Vec<u8> {
        let mut response = ureq::get(format!("{}{path}", self.base))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .unwrap()
    }

    /// GET `path` as JSON (a failure shows the server's output).
    pub fn get(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get_text(path);
        assert_eq!(status, 200, "GET {path}: {body}\n{}", self.output());
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// POST `json` to `path`, as the HParams dashboard asks.
    pub fn post(&self, path: &str, json: &serde_json::Value) -> serde_json::Value {
        let (status, body) = self.read(
            ureq::post(format!("{}{path}", self.base))
                .header("Content-Type", "application/json")
                .send(json.to_string()),
        );
        assert_eq!(status, 200, "POST {path}: {body}\n{}", self.output());
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("POST {path}: {e}: {body}"))
    }

    /// GET `path` until `ready` holds of its JSON (the loader reads the log folder in the
    /// background), for at most a minute; the last answer is returned either way.
    pub fn wait_for(
        &self,
        path: &str,
        ready: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let value = self.get(path);
            if ready(&value) || start.elapsed() > Duration::from_secs(60) {
                return value;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The `(step, value)` points of a scalar series, once the server has loaded `want` of them.
    pub fn scalars(&self, run: &str, tag: &str, want: usize) -> Vec<(i64, f64)> {
        self.wait_for("/data/plugin/scalars/tags", |v| v[run][tag].is_object());
        let path = format!(
            "/data/plugin/scalars/scalars?run={}&tag={}",
            enc(run),
            enc(tag)
        );
        let series = self.wait_for(&path, |v| v.as_array().is_some_and(|a| a.len() >= want));
        series
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[1].as_i64().unwrap(), p[2].as_f64().unwrap()))
            .collect()
    }

    /// What the server printed so far.
    pub fn output(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn read(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> (u16, String) {
        match response {
            Ok(mut r) => (
                r.status().as_u16(),
                r.body_mut()
                    .with_config()
                    .limit(64 << 20)
                    .read_to_string()
                    .unwrap(),
            ),
            Err(ureq::Error::StatusCode(code)) => (code, String::new()),
            Err(e) => panic!("tensorboard at {}: {e}\n{}", self.base, self.output()),
        }
    }
}

/// A run or tag name as a query value.
pub fn enc(s: &str) -> String {
    s.replace('%', "%25")
        .replace('/', "%2F")
        .replace(' ', "%20")
        .replace('(', "%28")
        .replace(')', "%29")
}

impl Drop for TensorBoard {
    fn drop(&mut self) {
        // SIGTERM first, so that TensorBoard stops its data-server child itself.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
