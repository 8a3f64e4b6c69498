//! The model registry: immutable, versioned artifacts and movable aliases.
//!
//! Filesystem layout (the embedded default; an S3-compatible backend can implement the same
//! operations later):
//! ```text
//! <root>/models/<model_id>/<version>/manifest.json + model file   (immutable once published)
//! <root>/aliases.json        {"production": {"model_id": …, "version": …}, …}
//! <root>/history.jsonl       one line per registration or alias move
//! ```
//! A version directory is written under a temporary name and renamed into place, and
//! `aliases.json` is replaced atomically (write + rename), so a reader — inference polling for
//! alias moves — never sees a half-written model or alias file.
//!
//! Writers may run concurrently (two `Train` calls, a trainer and an operator's
//! `vigil-registry`): the short read-modify-write steps — claiming a version number, moving an
//! alias — hold `<root>/.lock` (an advisory `flock`). A claimed version is the directory
//! `.tmp-v<N>` with a `.writer` file its writer keeps locked while it trains and writes, which
//! can take minutes, without holding the registry lock. A claim whose writer died (the lock is
//! free) is removed by the next claim. Locks are per host: a registry shared between machines
//! (NFS, object storage) needs a lock service instead.

use model::{LoadedModel, ModelError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Aliases the platform uses for rollout stages.
pub mod stages {
    pub const CANDIDATE: &str = "candidate";
    pub const STAGING: &str = "staging";
    pub const PRODUCTION: &str = "production";
}

/// A model version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    pub model_id: String,
    pub version: String,
}

/// One line of the registry's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum HistoryEvent {
    Registered {
        at_ms: i64,
        model: ModelRef,
    },
    AliasMoved {
        at_ms: i64,
        alias: String,
        model: ModelRef,
        previous: Option<ModelRef>,
    },
}

/// Errors of the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry i/o at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt registry file {path}: {source}")]
    Corrupt {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("no model {model_id} version {version} in the registry")]
    UnknownVersion { model_id: String, version: String },
    #[error("invalid name {0:?}: use 1 to 64 letters, digits, '-', '_' and '.'")]
    InvalidName(String),
    #[error(transparent)]
    Model(#[from] ModelError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The longest model id, version or alias name.
pub const MAX_NAME_LEN: usize = 64;

/// Checks a model id, version or alias name (it becomes a file or directory name): 1 to
/// [`MAX_NAME_LEN`] letters, digits, `-`, `_` and `.`, and not `.` or `..`. The error quotes
/// at most 32 characters of it.
pub fn check_name(name: &str) -> Result<(), RegistryError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(RegistryError::InvalidName(name.chars().take(32).collect()))
    }
}

/// The file a version claim's writer keeps locked (removed before the version is published).
const WRITER_FILE: &str = ".writer";

/// A claimed, not yet published version: its directory and the writer's lock.
struct Claim {
    model: ModelRef,
    dir: PathBuf,
    _writer: std::fs::File,
}

impl Claim {
    /// Moves the finished directory to its final name (the lock goes when `self` drops).
    fn publish(&self, final_dir: &Path) -> Result<(), RegistryError> {
        let writer = self.dir.join(WRITER_FILE);
        std::fs::remove_file(&writer).map_err(io(&writer))?;
        std::fs::rename(&self.dir, final_dir).map_err(io(final_dir))
    }
}

/// Whether another writer still holds the claim at `dir`.
fn claim_is_live(dir: &Path) -> bool {
    match std::fs::File::open(dir.join(WRITER_FILE)) {
        Ok(f) => matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

/// A filesystem model registry.
#[derive(Debug, Clone)]
pub struct Registry {
    root: PathBuf,
}

impl Registry {
    /// Opens (creating) a registry at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Registry, RegistryError> {
        let root = root.into();
        let models = root.join("models");
        std::fs::create_dir_all(&models).map_err(io(&models))?;
        Ok(Registry { root })
    }

    /// Opens an existing registry without creating anything (read-only users).
    pub fn open_existing(root: impl Into<PathBuf>) -> Registry {
        Registry { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a registered version (its artifact and report).
    pub fn version_dir(&self, m: &ModelRef) -> PathBuf {
        self.root.join("models").join(&m.model_id).join(&m.version)
    }

    /// Versions of `model_id`, oldest first (versions are `v1`, `v2`, …).
    pub fn versions(&self, model_id: &str) -> Result<Vec<String>, RegistryError> {
        check_name(model_id)?;
        let dir = self.root.join("models").join(model_id);
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut numbers: Vec<u64> = std::fs::read_dir(&dir)
            .map_err(io(&dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_prefix('v')?.parse().ok())
            .collect();
        numbers.sort_unstable();
        Ok(numbers.into_iter().map(|n| format!("v{n}")).collect())
    }

    /// Registers a new version of `model_id`: `write` fills a fresh directory (it receives the
    /// directory and the version string), which is then published atomically.
    pub fn register<E>(
        &self,
        model_id: &str,
        now_ms: i64,
        write: impl FnOnce(&Path, &str) -> Result<(), E>,
    ) -> Result<ModelRef, E>
    where
        E: From<RegistryError>,
    {
        check_name(model_id)?;
        let claim = self.claim_version(model_id)?;
        let model = claim.model.clone();
        let published = write(&claim.dir, &model.version).and_then(|()| {
            // Verify before publishing: a registry never holds an unloadable version.
            LoadedModel::load(&claim.dir).map_err(RegistryError::from)?;
            claim.publish(&self.version_dir(&model)).map_err(E::from)
        });
        if let Err(e) = published {
            // Nothing of a failed version stays behind (its number is reused).
            let _ = std::fs::remove_dir_all(&claim.dir);
            return Err(e);
        }
        self.append_history(&HistoryEvent::Registered {
            at_ms: now_ms,
            model: model.clone(),
        })?;
        Ok(model)
    }

    /// Runs `f` holding the registry-wide lock `<root>/.lock` (released when the file closes,
    /// also when the process dies).
    fn locked<T>(&self, f: impl FnOnce() -> Result<T, RegistryError>) -> Result<T, RegistryError> {
        let path = self.root.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        file.lock().map_err(io(&path))?;
        f()
    }

    /// Claims the next version number of `model_id`: a fresh `.tmp-v<N>` directory whose
    /// `.writer` file stays locked for as long as the claim lives.
    fn claim_version(&self, model_id: &str) -> Result<Claim, RegistryError> {
        self.locked(|| {
            let parent = self.root.join("models").join(model_id);
            std::fs::create_dir_all(&parent).map_err(io(&parent))?;
            let mut highest = self
                .versions(model_id)?
                .last()
                .and_then(|v| v[1..].parse::<u64>().ok())
                .unwrap_or(0);
            for entry in std::fs::read_dir(&parent).map_err(io(&parent))? {
                let entry = entry.map_err(io(&parent))?;
                let name = entry.file_name();
                let Some(n) = name
                    .to_str()
                    .and_then(|n| n.strip_prefix(".tmp-v"))
                    .and_then(|n| n.parse::<u64>().ok())
                else {
                    continue;
                };
                if claim_is_live(&entry.path()) {
                    highest = highest.max(n);
                } else {
                    let stale = entry.path();
                    tracing::warn!(dir = %stale.display(), "removing a version claim whose writer is gone");
                    std::fs::remove_dir_all(&stale).map_err(io(&stale))?;
                }
            }
            let version = format!("v{}", highest + 1);
            let dir = parent.join(format!(".tmp-{version}"));
            std::fs::create_dir(&dir).map_err(io(&dir))?;
            let writer_path = dir.join(WRITER_FILE);
            let writer = std::fs::File::create(&writer_path).map_err(io(&writer_path))?;
            writer.lock().map_err(io(&writer_path))?;
            Ok(Claim {
                model: ModelRef {
                    model_id: model_id.to_owned(),
                    version,
                },
                dir,
                _writer: writer,
            })
        })
    }

    fn aliases_path(&self) -> PathBuf {
        self.root.join("aliases.json")
    }

    /// Every alias and the version it points at.
    pub fn aliases(&self) -> Result<BTreeMap<String, ModelRef>, RegistryError> {
        let path = self.aliases_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| RegistryError::Corrupt {
                path: path.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// The version `alias` points at, if any.
    pub fn resolve(&self, alias: &str) -> Result<Option<ModelRef>, RegistryError> {
        Ok(self.aliases()?.remove(alias))
    }

    /// Points `alias` at `model` (which must exist); returns the previous target.
    pub fn set_alias(
        &self,
        alias: &str,
        model: &ModelRef,
        now_ms: i64,
    ) -> Result<Option<ModelRef>, RegistryError> {
        check_name(alias)?;
        check_name(&model.model_id)?;
        check_name(&model.version)?;
        if !self
            .version_dir(model)
            .join(model::artifact::MANIFEST_FILE)
            .exists()
        {
            return Err(RegistryError::UnknownVersion {
                model_id: model.model_id.clone(),
                version: model.version.clone(),
            });
        }
        self.locked(|| {
            let mut aliases = self.aliases()?;
            let previous = aliases.insert(alias.to_owned(), model.clone());
            let path = self.aliases_path();
            let tmp = self.root.join(".aliases.json.tmp");
            let bytes =
                serde_json::to_vec_pretty(&aliases).map_err(|source| RegistryError::Corrupt {
                    path: path.display().to_string(),
                    source,
                })?;
            let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(&bytes).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
            self.append_history(&HistoryEvent::AliasMoved {
                at_ms: now_ms,
                alias: alias.to_owned(),
                model: model.clone(),
                previous: previous.clone(),
            })?;
            Ok(previous)
        })
    }

    /// Loads and verifies a version.
    pub fn load(&self, model: &ModelRef) -> Result<LoadedModel, RegistryError> {
        check_name(&model.model_id)?;
        check_name(&model.version)?;
        let dir = self.version_dir(model);
        if !dir.exists() {
            return Err(RegistryError::UnknownVersion {
                model_id: model.model_id.clone(),
                version: model.version.clone(),
            });
        }
        Ok(LoadedModel::load(&dir)?)
    }

    fn append_history(&self, event: &HistoryEvent) -> Result<(), RegistryError> {
        let path = self.root.join("history.jsonl");
        let mut line = serde_json::to_vec(event).map_err(|source| RegistryError::Corrupt {
            path: path.display().to_string(),
            source,
        })?;
        line.push(b'\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        f.write_all(&line).map_err(io(&path))?;
        Ok(())
    }

    /// The full history, oldest first.
    pub fn history(&self) -> Result<Vec<HistoryEvent>, RegistryError> {
        let path = self.root.join("history.jsonl");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&path)(e)),
        };
        text.lines()
            .map(|l| {
                serde_json::from_str(l).map_err(|source| RegistryError::Corrupt {
                    path: path.display().to_string(),
                    source,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
