//! A policy document in a file, re-read when it changes on disk.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::policy::{PolicyDocument, PolicyError, PolicyHandle};

/// Publishes the policy document in a file, and again whenever the file changes.
///
/// The file is polled at an interval, which works the same on every file system, editors'
/// rename-on-save included. A change is told by the file's modification time and length and,
/// on Unix, its device, inode and status-change time, which no tool sets back: a file swapped
/// in with the same length and modification time (`rsync -t`, `cp -p`), or made readable
/// again with `chmod`, is read again. A document that does not validate is logged with its
/// error and the snapshot in force stays until the file changes; a file that cannot be read
/// is tried again at every interval, its error logged once until it changes.
///
/// ```no_run
/// use std::time::Duration;
/// use tower_cross_api::{PolicyHandle, source::FileSource};
///
/// # async fn run() -> Result<(), tower_cross_api::source::FileSourceError> {
/// let policies = PolicyHandle::new();
/// let source = FileSource::new("policy.json", policies.clone())
///     .with_interval(Duration::from_millis(500));
///
/// source.load().await?; // the first snapshot, or an error to stop on
/// tokio::spawn(source.watch()); // then follow the file
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct FileSource {
    path: PathBuf,
    policies: PolicyHandle,
    interval: Duration,
    seen: Arc<Mutex<Seen>>,
}

/// What the source last saw of the file.
#[derive(Debug, Default)]
struct Seen {
    /// The stamp of the last file read, or `None` when the last read failed.
    stamp: Option<Stamp>,
    /// A digest of the contents last published, and the revision they were published at.
    published: Option<(u64, u64)>,
}

/// Why a policy file was not published.
#[derive(Debug)]
#[non_exhaustive]
pub enum FileSourceError {
    /// The file could not be read.
    Read(io::Error),
    /// The file's document was refused.
    Policy(PolicyError),
}

impl fmt::Display for FileSourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(error) => write!(f, "cannot read the policy file: {error}"),
            Self::Policy(error) => write!(f, "the policy file was refused: {error}"),
        }
    }
}

impl std::error::Error for FileSourceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read(error) => Some(error),
            Self::Policy(error) => Some(error),
        }
    }
}

/// What the watcher compares to tell that the file changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    /// Device, inode, and status-change time in seconds and nanoseconds.
    #[cfg(unix)]
    node: (u64, u64, i64, i64),
}

impl Stamp {
    fn of(metadata: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;

        Self {
            modified: metadata.modified().ok(),
            len: metadata.len(),
            #[cfg(unix)]
            node: (
                metadata.dev(),
                metadata.ino(),
                metadata.ctime(),
                metadata.ctime_nsec(),
            ),
        }
    }
}

impl FileSource {
    /// A source for the document at `path`, publishing into `policies`, polled every second.
    pub fn new(path: impl Into<PathBuf>, policies: PolicyHandle) -> Self {
        Self {
            path: path.into(),
            policies,
            interval: Duration::from_secs(1),
            seen: Arc::default(),
        }
    }

    /// How often the file is checked for a change.
    pub const fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads, validates and publishes the file once; returns the published revision. Contents
    /// this source published last, still in force, are not published again (a `chmod` or a
    /// new hard link changes the file's stamp, not its document): their revision is returned.
    ///
    /// # Errors
    ///
    /// [`FileSourceError`] when the file cannot be read or its document is refused; the
    /// snapshot in force stays.
    pub async fn load(&self) -> Result<u64, FileSourceError> {
        let stamp = self.stamp().await;
        let read = tokio::fs::read(&self.path).await;
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.stamp = stamp.filter(|_| read.is_ok());

        let contents = read.map_err(FileSourceError::Read)?;
        let digest = {
            let mut hasher = DefaultHasher::new();
            contents.hash(&mut hasher);
            hasher.finish()
        };
        if let Some((_, revision)) = seen.published.filter(|&(last, revision)| {
            last == digest && self.policies.revision() == Some(revision)
        }) {
            return Ok(revision);
        }

        let document = PolicyDocument::from_slice(&contents).map_err(FileSourceError::Policy)?;
        let revision = self
            .policies
            .publish_document(&document)
            .map_err(FileSourceError::Policy)?;
        seen.published = Some((digest, revision));
        Ok(revision)
    }

    /// Follows the file for as long as the future runs, publishing each change since the last
    /// [`load`](Self::load) and logging each refusal. Never returns; drop or abort it to stop.
    pub async fn watch(self) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut unreadable: Option<String> = None;

        loop {
            ticks.tick().await;
            #[cfg(feature = "metrics")]
            crate::metrics::record_snapshot(&self.policies);

            let last = self
                .seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .stamp;
            if self.stamp().await == last {
                continue;
            }

            let before = self.policies.revision();
            let loaded = self.load().await;
            let read_error = match &loaded {
                Err(FileSourceError::Read(error)) => Some(error.to_string()),
                _ => None,
            };
            let repeated = read_error.is_some() && read_error == unreadable;
            unreadable = read_error;
            match loaded {
                Ok(revision) if before == Some(revision) => tracing::debug!(
                    path = %self.path.display(),
                    revision,
                    "policy file touched; its document is the one in force"
                ),
                Ok(revision) => tracing::info!(
                    path = %self.path.display(),
                    revision,
                    "published the policy file"
                ),
                Err(_) if repeated => {}
                Err(error) => tracing::error!(
                    path = %self.path.display(),
                    revision = self.policies.revision(),
                    %error,
                    "policy file refused; the snapshot in force stays"
                ),
            }
        }
    }

    async fn stamp(&self) -> Option<Stamp> {
        let metadata = tokio::fs::metadata(&self.path).await.ok()?;
        Some(Stamp::of(&metadata))
    }
}
