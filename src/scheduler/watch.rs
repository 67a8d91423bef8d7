//! The config watch (`[daemon] watch_config`): tells the daemon loop when `jobs.toml`'s content
//! changed. It listens to file-system notifications (inotify on Linux, through `notify`) on the
//! file's folder, and on the folder of the file a symlink points to, so an idle daemon does not
//! wake for it; where no watch can be set up (the inotify limit, a file system without
//! notifications) it checks the file every `watch_interval` instead, as it logs once. Reloading
//! is the daemon's (`daemon.rs`).

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use std::ffi::OsString;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tracing::{debug, info, warn};

/// How long the file must be quiet after a notification before it is read: an editor's save (a
/// truncate and writes, or a temporary file renamed over it) arrives as several events, and the
/// content is read once they are over.
pub const NOTIFY_SETTLE: Duration = Duration::from_millis(100);

/// Watches one config file (see the module docs).
pub(super) struct ConfigWatch {
    path: PathBuf,
    fingerprint: FileFingerprint,
    poll_interval: Duration,
    mode: Mode,
}

enum Mode {
    /// `watch_config` is off.
    Off,
    /// File-system notifications.
    Notified(Notified),
    /// A check every poll interval.
    Polling(tokio::time::Interval),
}

struct Notified {
    /// Held for its life: dropping it ends the watch.
    watcher: RecommendedWatcher,
    /// Which folders are watched and which names in them count.
    targets: Arc<Mutex<Targets>>,
    /// Signalled (once, however many events) when an event about the file arrived.
    events: Arc<Notify>,
    /// An event arrived; the file is read once [`NOTIFY_SETTLE`] passed without another.
    settling: bool,
}

/// The folders watched, and the names whose events count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Targets {
    folders: Vec<PathBuf>,
    names: Vec<OsString>,
    /// The config file is a symlink: any change in its folder may retarget it (a link to a link,
    /// as Kubernetes swaps `..data`), so every event counts; the content decides.
    any_name: bool,
}

impl Targets {
    /// The folder of `path` and its name; when `path` is a symlink, also the folder and name of
    /// the file it resolves to.
    fn of(path: &Path) -> Targets {
        let mut targets = Targets::default();
        let mut add = |file: &Path| {
            let folder = match file.parent() {
                Some(folder) if !folder.as_os_str().is_empty() => folder.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if !targets.folders.contains(&folder) {
                targets.folders.push(folder);
            }
            if let Some(name) = file.file_name() {
                targets.names.push(name.to_owned());
            }
        };
        add(path);
        let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        if is_link {
            if let Ok(resolved) = std::fs::canonicalize(path) {
                add(&resolved);
            }
        }
        targets.any_name = is_link;
        targets
    }

    /// Whether `event` may be about the config file. Reads (open, read, close without a write)
    /// never count: the daemon's own reads of the file would wake it again.
    fn concern(&self, event: &notify::Event) -> bool {
        match event.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
            EventKind::Access(_) => return false,
            _ => {}
        }
        if event.need_rescan() || self.any_name {
            return true;
        }
        event.paths.iter().any(|path| {
            path.file_name()
                .is_some_and(|name| self.names.iter().any(|n| n == name))
        })
    }
}

impl ConfigWatch {
    /// A watch of `path` as it is now, on or off as `enabled` says.
    pub(super) async fn new(path: &Path, enabled: bool, poll_interval: Duration) -> ConfigWatch {
        let mut watch = ConfigWatch {
            path: path.to_path_buf(),
            fingerprint: FileFingerprint::read(path).await,
            poll_interval,
            mode: Mode::Off,
        };
        watch.follow_setting(enabled);
        watch
    }

    /// A watch that checks the file every `poll_interval`, whatever notifications could do.
    #[cfg(test)]
    async fn polling(path: &Path, poll_interval: Duration) -> ConfigWatch {
        ConfigWatch {
            path: path.to_path_buf(),
            fingerprint: FileFingerprint::read(path).await,
            poll_interval,
            mode: Mode::Polling(interval(poll_interval)),
        }
    }

    /// Starts watching when `enabled` and not watching yet; stops when not `enabled`.
    pub(super) fn follow_setting(&mut self, enabled: bool) {
        match (&self.mode, enabled) {
            (Mode::Off, true) => self.mode = self.start(),
            (Mode::Notified(_) | Mode::Polling(_), false) => {
                info!("No longer watching {} for changes", self.path.display());
                self.mode = Mode::Off;
            }
            _ => {}
        }
    }

    fn start(&self) -> Mode {
        match Notified::start(&self.path) {
            Ok(notified) => {
                debug!(
                    "Watching {} for changes (file-system notifications)",
                    self.path.display()
                );
                Mode::Notified(notified)
            }
            Err(e) => {
                warn!(
                    "Failed to watch the folder of {} for changes ({e}); checking the file every \
                     {} ms instead",
                    self.path.display(),
                    self.poll_interval.as_millis()
                );
                Mode::Polling(interval(self.poll_interval))
            }
        }
    }

    /// Waits until the file may have changed: a notification about it (once the file has been
    /// quiet for [`NOTIFY_SETTLE`]), or the next poll. Never returns while the watch is off.
    /// Cancel-safe: a notification that arrived while the caller did something else is kept.
    pub(super) async fn next_check(&mut self) {
        match &mut self.mode {
            Mode::Off => std::future::pending().await,
            Mode::Polling(interval) => {
                interval.tick().await;
            }
            Mode::Notified(notified) => loop {
                if !notified.settling {
                    notified.events.notified().await;
                    notified.settling = true;
                    continue;
                }
                tokio::select! {
                    _ = notified.events.notified() => {}
                    _ = tokio::time::sleep(NOTIFY_SETTLE) => {
                        notified.settling = false;
                        return;
                    }
                }
            },
        }
    }

    /// Whether the file's content changed since the last look (see [`FileFingerprint`]);
    /// remembers what it found. Follows a symlink that now points elsewhere.
    pub(super) async fn changed(&mut self) -> bool {
        if let Mode::Notified(notified) = &mut self.mode {
            notified.follow_symlink(&self.path);
        }
        self.fingerprint.changed(&self.path).await
    }

    /// Takes the file as it is now as seen (after a reload read it).
    pub(super) async fn remember(&mut self) {
        self.fingerprint = FileFingerprint::read(&self.path).await;
    }
}

impl Notified {
    fn start(path: &Path) -> notify::Result<Notified> {
        let targets = Arc::new(Mutex::new(Targets::of(path)));
        let events = Arc::new(Notify::new());
        let handler = {
            let (targets, events) = (targets.clone(), events.clone());
            move |event: notify::Result<notify::Event>| {
                let concerns = match &event {
                    // An error (a lost event, an overflowing queue) may hide a change: look.
                    Err(_) => true,
                    Ok(event) => targets
                        .lock()
                        .map(|targets| targets.concern(event))
                        .unwrap_or(true),
                };
                if concerns {
                    events.notify_one();
                }
            }
        };
        let mut watcher = notify::recommended_watcher(handler)?;
        let folders = targets.lock().map(|t| t.folders.clone()).unwrap_or_default();
        for folder in &folders {
            watcher.watch(folder, RecursiveMode::NonRecursive)?;
        }
        Ok(Notified {
            watcher,
            targets,
            events,
            settling: false,
        })
    }

    /// Watches the folder a symlinked config file points to now, if it changed.
    fn follow_symlink(&mut self, path: &Path) {
        let now = Targets::of(path);
        let Ok(mut targets) = self.targets.lock() else {
            return;
        };
        if *targets == now {
            return;
        }
        for folder in targets.folders.iter().filter(|f| !now.folders.contains(f)) {
            let _ = self.watcher.unwatch(folder);
        }
        for folder in now.folders.iter().filter(|f| !targets.folders.contains(f)) {
            if let Err(e) = self.watcher.watch(folder, RecursiveMode::NonRecursive) {
                warn!(
                    "Failed to watch {} for changes of {}: {e}",
                    folder.display(),
                    path.display()
                );
            }
        }
        *targets = now;
    }
}

/// What the config watch compares: the file's metadata (one `stat`, every check) and its
/// content's hash (read only when the metadata changed, or when it was read while the file was
/// fresh), so a check that finds nothing new costs one system call.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileFingerprint {
    stamp: Option<FileStamp>,
    content: Option<u64>,
    /// The file's modification time was over [`STAMP_SETTLED`] old when it was read: a later
    /// write gives it another one. (File times come from a coarse clock: two writes a few
    /// milliseconds apart can share one, so a fresh stamp proves nothing.)
    settled: bool,
}

/// How old a file's modification time must be to tell every later write apart.
const STAMP_SETTLED: Duration = Duration::from_secs(2);

/// Length, modification time and inode: what changes when the file is written or replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode: meta.ino(),
        })
    }
}

impl FileFingerprint {
    async fn read(path: &Path) -> FileFingerprint {
        let stamp = FileStamp::of(path);
        let settled = stamp
            .as_ref()
            .and_then(|s| s.modified)
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > STAMP_SETTLED);
        let path: PathBuf = path.to_path_buf();
        let content = tokio::fs::read(&path).await.ok().map(|bytes| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut hasher);
            hasher.finish()
        });
        FileFingerprint {
            stamp,
            content,
            settled,
        }
    }

    /// Whether the file's content changed since the last look (a write that keeps the content
    /// is not a change); remembers what it found.
    async fn changed(&mut self, path: &Path) -> bool {
        if self.settled && self.stamp.is_some() && FileStamp::of(path) == self.stamp {
            return false;
        }
        let now = FileFingerprint::read(path).await;
        let changed = now.content != self.content;
        *self = now;
        changed
    }
}

/// A polling interval that does not burst after a stall, and does not fire at once.
fn interval(period: Duration) -> tokio::time::Interval {
    let period = period.max(Duration::from_millis(10));
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits for the watch to report a change, for at most `within`.
    async fn change_seen(watch: &mut ConfigWatch, within: Duration) -> bool {
        tokio::time::timeout(within, async {
            loop {
                watch.next_check().await;
                if watch.changed().await {
                    return;
                }
            }
        })
        .await
        .is_ok()
    }

    #[tokio::test]
    async fn the_config_watch_sees_a_new_content_and_not_a_touch() {
        let dir = crate::db::testing::TempDir::new("haier-sync-fingerprint").unwrap();
        let path = dir.path().join("jobs.toml");
        std::fs::write(&path, "a = 1\n").unwrap();
        let old = std::time::SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(old))
            .unwrap();
        let mut fingerprint = FileFingerprint::read(&path).await;
        assert!(fingerprint.settled);
        assert!(!fingerprint.changed(&path).await, "nothing happened");
        // Rewritten with the same content (a new modification time): not a change.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&path, "a = 1\n").unwrap();
        assert!(!fingerprint.changed(&path).await, "same content");
        // The same length, another content.
        std::fs::write(&path, "a = 2\n").unwrap();
        assert!(fingerprint.changed(&path).await, "new content");
        assert!(!fingerprint.changed(&path).await, "seen already");
        // Replaced by another file (a new inode), as editors save.
        let other = dir.path().join("jobs.toml.new");
        std::fs::write(&other, "a = 3\n").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert!(fingerprint.changed(&path).await, "replaced");
        std::fs::remove_file(&path).unwrap();
        assert!(fingerprint.changed(&path).await, "removed");
        assert!(!fingerprint.changed(&path).await, "still missing");
    }

    #[tokio::test]
    async fn a_notified_watch_sees_a_write_and_a_file_renamed_over_it() {
        let dir = crate::db::testing::TempDir::new("haier-sync-watch").unwrap();
        let path = dir.path().join("jobs.toml");
        std::fs::write(&path, "a = 1\n").unwrap();
        let mut watch = ConfigWatch::new(&path, true, Duration::from_secs(3600)).await;
        assert!(
            matches!(watch.mode, Mode::Notified(_)),
            "inotify is available here"
        );

        std::fs::write(&path, "a = 2\n").unwrap();
        assert!(
            change_seen(&mut watch, Duration::from_secs(10)).await,
            "written in place"
        );

        let other = dir.path().join("jobs.toml.new");
        std::fs::write(&other, "a = 3\n").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert!(
            change_seen(&mut watch, Duration::from_secs(10)).await,
            "renamed over"
        );
    }

    #[tokio::test]
    async fn a_notified_watch_follows_a_symlink_to_another_folder() {
        let dir = crate::db::testing::TempDir::new("haier-sync-watch-link").unwrap();
        let (etc, data) = (dir.path().join("etc"), dir.path().join("data"));
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::create_dir_all(&data).unwrap();
        let target = data.join("real.toml");
        std::fs::write(&target, "a = 1\n").unwrap();
        let path = etc.join("jobs.toml");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let mut watch = ConfigWatch::new(&path, true, Duration::from_secs(3600)).await;
        assert!(matches!(watch.mode, Mode::Notified(_)));

        std::fs::write(&target, "a = 2\n").unwrap();
        assert!(
            change_seen(&mut watch, Duration::from_secs(10)).await,
            "the target written"
        );
    }

    #[test]
    fn only_writes_to_the_file_itself_concern_the_watch() {
        let targets = Targets::of(Path::new("/etc/haier-sync/jobs.toml"));
        assert_eq!(targets.folders, [PathBuf::from("/etc/haier-sync")]);
        let event = |kind: EventKind, name: &str| {
            notify::Event::new(kind).add_path(PathBuf::from("/etc/haier-sync").join(name))
        };
        use notify::event::{CreateKind, ModifyKind, RenameMode};
        assert!(targets.concern(&event(EventKind::Modify(ModifyKind::Any), "jobs.toml")));
        assert!(targets.concern(&event(
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            "jobs.toml"
        )));
        assert!(targets.concern(&event(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            "jobs.toml"
        )));
        assert!(!targets.concern(&event(
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            "jobs.toml"
        )));
        assert!(!targets.concern(&event(
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            "jobs.toml"
        )));
        assert!(!targets.concern(&event(EventKind::Modify(ModifyKind::Any), "haier-sync.db-wal")));
        assert!(!targets.concern(&event(EventKind::Create(CreateKind::File), "jobs.toml.swp")));
    }

    #[tokio::test]
    async fn a_polling_watch_sees_a_new_content() {
        let dir = crate::db::testing::TempDir::new("haier-sync-watch-poll").unwrap();
        let path = dir.path().join("jobs.toml");
        std::fs::write(&path, "a = 1\n").unwrap();
        let mut watch = ConfigWatch::polling(&path, Duration::from_millis(20)).await;
        std::fs::write(&path, "a = 22\n").unwrap();
        assert!(change_seen(&mut watch, Duration::from_secs(10)).await);
    }
}
