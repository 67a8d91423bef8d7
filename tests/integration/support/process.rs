//! The `haier-sync` binary as users run it: one-shot commands, and a long-running process
//! (`run`, or `run-job` that a test cuts short) that is signalled or `kill -9`ed as systemd or an
//! operator would.

use super::app::TestApp;
use super::wait::Deadline;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

/// `haier-sync <args> --config <config>`, run from the config's folder, with the log level the
/// config says.
pub fn command(config: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_haier-sync"));
    command
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .current_dir(config.parent().expect("config in a folder"));
    command
}

/// `haier-sync <args>` on the app's `jobs.toml`, run to its end.
pub fn run_command(app: &TestApp, args: &[&str]) -> Output {
    command(app.config_path(), args)
        .output()
        .expect("the haier-sync binary runs")
}

/// What a command printed on its standard output, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What a command printed on its standard error, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A `haier-sync` process on the app's `jobs.toml` (one at a time, started again after each
/// kill), with the output of every start in the app's folder. Dropping it kills a running
/// process; dropping it during a panic prints what every start wrote.
pub struct DaemonProcess {
    dir: PathBuf,
    /// Names the output files, so that several daemons of one app keep theirs apart.
    name: String,
    pub config: PathBuf,
    child: Option<Child>,
    starts: usize,
}

impl TestApp {
    /// The `haier-sync` process of this app (not started).
    pub fn daemon_process(&self) -> DaemonProcess {
        self.daemon_process_named("daemon")
    }

    /// Another `haier-sync` process of this app, beside the first (several daemons sharing
    /// one database); `name` names its output files.
    pub fn daemon_process_named(&self, name: &str) -> DaemonProcess {
        DaemonProcess {
            dir: self.dir().to_owned(),
            name: name.to_owned(),
            config: self.config_path().to_owned(),
            child: None,
            starts: 0,
        }
    }
}

impl DaemonProcess {
    fn output_path(&self, start: usize) -> PathBuf {
        self.dir.join(format!("{}-{start}.log", self.name))
    }

    /// Starts `haier-sync run -c jobs.toml`. Returns the pid.
    pub fn start(&mut self) -> u32 {
        self.start_with(&["run"])
    }

    /// Starts `haier-sync -c jobs.toml <args>`, its stdout and stderr going to one file per
    /// start. Only the test's file configures it. Returns the pid.
    pub fn start_with(&mut self, args: &[&str]) -> u32 {
        assert!(self.child.is_none(), "a daemon is running already");
        self.starts += 1;
        let log = std::fs::File::create(self.output_path(self.starts)).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_haier-sync"));
        command
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("HAIER_SYNC_") {
                command.env_remove(name);
            }
        }
        let child = command.spawn().expect("spawn haier-sync");
        let pid = child.id();
        self.child = Some(child);
        pid
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a daemon is running").id()
    }

    /// `kill -9`, and reaps the process (so that its pid is gone, as after a real crash).
    pub fn kill_9(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("a daemon is running");
        child.kill().unwrap();
        child.wait().unwrap()
    }

    /// `kill -9` without reaping, as a supervisor or a script that does not wait leaves it: the
    /// process is dead, but its pid stays taken (a zombie, `/proc/<pid>` still there) until the
    /// returned handle is waited on or dropped.
    pub fn kill_9_leaving_a_zombie(&mut self) -> Child {
        let mut child = self.child.take().expect("a daemon is running");
        child.kill().unwrap();
        let proc_dir = PathBuf::from(format!("/proc/{}/status", child.id()));
        // The signal is delivered asynchronously: wait until the process is a zombie.
        for _ in 0..500 {
            let state = std::fs::read_to_string(&proc_dir).unwrap_or_default();
            if state.lines().any(|l| l.starts_with("State:") && l.contains('Z')) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        child
    }

    /// Sends a signal (`TERM`, `HUP`) with the `kill` command.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// The exit status, when the process has exited by itself.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut().expect("a daemon is running");
        let status = child.try_wait().unwrap()?;
        self.child = None;
        Some(status)
    }

    /// Waits for the process to exit by itself, up to `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Deadline::new(limit);
        loop {
            if let Some(status) = self.try_exit() {
                return status;
            }
            deadline.wait("the daemon to exit", &self.pid()).await;
        }
    }

    /// What the current start wrote so far.
    pub fn current_output(&self) -> String {
        std::fs::read_to_string(self.output_path(self.starts)).unwrap_or_default()
    }

    /// What every start wrote to stdout and stderr, start by start.
    pub fn output(&self) -> String {
        (1..=self.starts)
            .map(|n| {
                let text = std::fs::read_to_string(self.output_path(n)).unwrap_or_default();
                format!("----- {} start {n} -----\n{text}", self.name)
            })
            .collect()
    }

    /// Waits until the current start's output contains `needle`.
    pub async fn wait_output(&self, needle: &str, limit: Duration) {
        let deadline = Deadline::new(limit);
        while !self.current_output().contains(needle) {
            let what = format!("`{needle}` in the daemon's output");
            deadline.wait(&what, &"the output, printed below").await;
        }
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.output());
        }
    }
}
