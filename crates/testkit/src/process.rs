//! Runs the real `slatis-sync` binary for end-to-end tests: a config file in a temporary
//! directory, the server on port 0, its address read from its output, its log kept.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `slatis-sync serve`.
pub struct Server {
    child: Child,
    /// The ingress base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The admin base URL, if the config opened one.
    pub admin_url: Option<String>,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `bin serve --config config` with `env` added to its environment, and waits
    /// until it says where it listens.
    ///
    /// # Panics
    /// If it does not start within 30 seconds.
    pub fn start(bin: &Path, config: &Path, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn slatis-sync");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let (log, tx) = (Arc::clone(&log), tx.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    log.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push_str(&format!("{line}\n"));
                    let _ = tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut url, mut admin_url) = (None, None);
        while url.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                panic!(
                    "slatis-sync did not start; its output:\n{}",
                    log.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                );
            };
            if let Some(u) = find_url(&line, "admin listening on ") {
                admin_url = Some(u);
            } else if let Some(u) = find_url(&line, "ingress listening on ") {
                url = Some(u);
            }
        }
        Self {
            child,
            url: url.unwrap_or_default(),
            admin_url,
            log,
        }
    }

    /// The webhook URL of `tenant`.
    pub fn webhook(&self, tenant: &str) -> String {
        format!("{}/webhooks/{tenant}", self.url)
    }

    /// Everything the server printed so far.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Sends SIGHUP: the server reloads its config file.
    ///
    /// # Panics
    /// If `kill` cannot be run.
    pub fn hang_up(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill -HUP");
        assert!(status.success(), "kill -HUP failed");
    }

    /// Kills the process at once (SIGKILL): nothing is flushed, nothing is released.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited 0.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn find_url(line: &str, marker: &str) -> Option<String> {
    let at = line.find(marker)? + marker.len();
    Some(line[at..].split_whitespace().next()?.to_owned())
}

/// Writes `yaml` to `config.yaml` in `dir` and returns its path.
///
/// # Panics
/// If the file cannot be written.
pub fn write_config(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    std::fs::write(&path, yaml).expect("write config");
    path
}

/// Runs `bin args…` to completion; returns the exit code, stdout and stderr.
///
/// # Panics
/// If the binary cannot be run.
pub fn run(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(bin);
    cmd.args(args).env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run slatis-sync");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
