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
        /// Why it moved (the gate's verdict, an operator's words); empty in older histories.
        #[serde(default)]
        reason: String,
        /// A promotion, or a roll-back to the alias's previous target.
        #[serde(default)]
        action: AliasAction,
    },
    /// An alias was removed (a demotion: nothing serves under that stage any more).
    AliasRemoved {
        at_ms: i64,
        alias: String,
        previous: ModelRef,
        reason: String,
    },
}

/// How an alias came to point where it points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AliasAction {
    /// Pointed at a chosen version (a promotion, or the first assignment).
    #[default]
    Set,
    /// Moved back to the target it had before its current one.
    Rollback,
}

impl HistoryEvent {
    /// When the event happened (ms since the epoch).
    pub fn at_ms(&self) -> i64 {
        match self {
            HistoryEvent::Registered { at_ms, .. }
            | HistoryEvent::AliasMoved { at_ms, .. }
            | HistoryEvent::AliasRemoved { at_ms, .. } => *at_ms,
        }
    }
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
    #[error("alias {0:?} is not set")]
    NoAlias(String),
    #[error("alias {alias:?} has no earlier target to roll back to")]
    NothingToRollBackTo { alias: String },
    #[error("a reason is required to move alias {0:?} (at most {MAX_REASON_LEN} characters)")]
    Reason(String),
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

/// The longest reason an alias move records.
pub const MAX_REASON_LEN: usize = 1_000;

fn check_reason(alias: &str, reason: &str) -> Result<(), RegistryError> {
    if reason.trim().is_empty() || reason.chars().count() > MAX_REASON_LEN {
        return Err(RegistryError::Reason(alias.chars().take(32).collect()));
    }
    Ok(())
}

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

/// A reserved, not yet published version ([`Registry::reserve_version`]): write the artifact
/// into [`Reservation::dir`], then hand it to [`Registry::publish`]. Its number is held by a
/// lock on a `.writer` file for as long as the value lives; dropped unpublished (a failed
/// training), its directory is removed and the number is free again.
#[derive(Debug)]
pub struct Reservation {
    model: ModelRef,
    dir: PathBuf,
    writer: Option<std::fs::File>,
}

impl Reservation {
    /// The version this reservation will publish.
    pub fn model(&self) -> &ModelRef {
        &self.model
    }

    /// The directory to write the artifact into (a temporary name until published).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Moves the finished directory to its final name and releases the lock.
    fn publish(mut self, final_dir: &Path) -> Result<ModelRef, RegistryError> {
        let writer = self.dir.join(WRITER_FILE);
        std::fs::remove_file(&writer).map_err(io(&writer))?;
        std::fs::rename(&self.dir, final_dir).map_err(io(final_dir))?;
        self.writer = None;
        Ok(self.model.clone())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.writer.is_some()
            && let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove an unpublished version");
        }
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

    /// Reserves the next version of `model_id`: write its artifact into the reservation's
    /// directory (training may take minutes; no registry lock is held meanwhile), then
    /// [`Registry::publish`] it.
    pub fn reserve_version(&self, model_id: &str) -> Result<Reservation, RegistryError> {
        check_name(model_id)?;
        self.claim_version(model_id)
    }

    /// Verifies the artifact in `reservation` (every file against the manifest's checksums, the
    /// model loads) and publishes it under its version atomically: a registry never holds an
    /// unloadable version. On error nothing is published and the reservation's directory goes.
    pub fn publish(
        &self,
        reservation: Reservation,
        now_ms: i64,
    ) -> Result<ModelRef, RegistryError> {
        let loaded = LoadedModel::load(reservation.dir())?;
        let manifest = loaded.manifest();
        if manifest.model_id != reservation.model().model_id
            || manifest.version != reservation.model().version
        {
            return Err(RegistryError::Model(ModelError::Invalid(format!(
                "the artifact says {} {}, the reservation is {} {}",
                manifest.model_id,
                manifest.version,
                reservation.model().model_id,
                reservation.model().version
            ))));
        }
        let final_dir = self.version_dir(reservation.model());
        let model = reservation.publish(&final_dir)?;
        self.append_history(&HistoryEvent::Registered {
            at_ms: now_ms,
            model: model.clone(),
        })?;
        Ok(model)
    }

    /// [`Registry::reserve_version`], `write` into the directory (it receives the directory and
    /// the version string), then [`Registry::publish`]: the short form for artifacts made in
    /// one step (tests, imports).
    pub fn register<E>(
        &self,
        model_id: &str,
        now_ms: i64,
        write: impl FnOnce(&Path, &str) -> Result<(), E>,
    ) -> Result<ModelRef, E>
    where
        E: From<RegistryError>,
    {
        let reservation = self.reserve_version(model_id)?;
        write(reservation.dir(), &reservation.model().version)?;
        Ok(self.publish(reservation, now_ms)?)
    }

    /// Every model id with at least one published version, sorted.
    pub fn models(&self) -> Result<Vec<String>, RegistryError> {
        let dir = self.root.join("models");
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if check_name(&name).is_ok() && !self.versions(&name)?.is_empty() {
                ids.push(name);
            }
        }
        ids.sort();
        Ok(ids)
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
    fn claim_version(&self, model_id: &str) -> Result<Reservation, RegistryError> {
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
            Ok(Reservation {
                model: ModelRef {
                    model_id: model_id.to_owned(),
                    version,
                },
                dir,
                writer: Some(writer),
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

    /// Points `alias` at `model` (which must exist), recording `reason`; returns the previous
    /// target.
    pub fn set_alias(
        &self,
        alias: &str,
        model: &ModelRef,
        reason: &str,
        now_ms: i64,
    ) -> Result<Option<ModelRef>, RegistryError> {
        check_name(alias)?;
        check_reason(alias, reason)?;
        self.check_exists(model)?;
        self.locked(|| {
            let mut aliases = self.aliases()?;
            let previous = aliases.insert(alias.to_owned(), model.clone());
            self.write_aliases(&aliases)?;
            self.append_history(&HistoryEvent::AliasMoved {
                at_ms: now_ms,
                alias: alias.to_owned(),
                model: model.clone(),
                previous: previous.clone(),
                reason: reason.to_owned(),
                action: AliasAction::Set,
            })?;
            Ok(previous)
        })
    }

    /// Moves `alias` back to the target it had before its current one, recording `reason`;
    /// returns the new target. Roll-backs undo promotions in order: after v1 → v2 → v3, two
    /// roll-backs lead to v2, then v1 (a roll-back is not itself undone by the next one).
    pub fn rollback(
        &self,
        alias: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<ModelRef, RegistryError> {
        check_name(alias)?;
        check_reason(alias, reason)?;
        self.locked(|| {
            let mut aliases = self.aliases()?;
            let current = aliases
                .get(alias)
                .cloned()
                .ok_or_else(|| RegistryError::NoAlias(alias.to_owned()))?;
            let target = rollback_target(&self.history()?, alias).ok_or_else(|| {
                RegistryError::NothingToRollBackTo {
                    alias: alias.to_owned(),
                }
            })?;
            self.check_exists(&target)?;
            aliases.insert(alias.to_owned(), target.clone());
            self.write_aliases(&aliases)?;
            self.append_history(&HistoryEvent::AliasMoved {
                at_ms: now_ms,
                alias: alias.to_owned(),
                model: target.clone(),
                previous: Some(current),
                reason: reason.to_owned(),
                action: AliasAction::Rollback,
            })?;
            Ok(target)
        })
    }

    /// Removes `alias` (a demotion), recording `reason`; returns what it pointed at.
    pub fn remove_alias(
        &self,
        alias: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<ModelRef, RegistryError> {
        check_name(alias)?;
        check_reason(alias, reason)?;
        self.locked(|| {
            let mut aliases = self.aliases()?;
            let previous = aliases
                .remove(alias)
                .ok_or_else(|| RegistryError::NoAlias(alias.to_owned()))?;
            self.write_aliases(&aliases)?;
            self.append_history(&HistoryEvent::AliasRemoved {
                at_ms: now_ms,
                alias: alias.to_owned(),
                previous: previous.clone(),
                reason: reason.to_owned(),
            })?;
            Ok(previous)
        })
    }

    /// The aliases pointing at `model` (its stages, as a view over the aliases).
    pub fn aliases_of(&self, model: &ModelRef) -> Result<Vec<String>, RegistryError> {
        Ok(self
            .aliases()?
            .into_iter()
            .filter(|(_, m)| m == model)
            .map(|(a, _)| a)
            .collect())
    }

    fn check_exists(&self, model: &ModelRef) -> Result<(), RegistryError> {
        check_name(&model.model_id)?;
        check_name(&model.version)?;
        if self
            .version_dir(model)
            .join(model::artifact::MANIFEST_FILE)
            .exists()
        {
            Ok(())
        } else {
            Err(RegistryError::UnknownVersion {
                model_id: model.model_id.clone(),
                version: model.version.clone(),
            })
        }
    }

    /// Replaces `aliases.json` atomically (write, sync, rename). Call holding the lock.
    fn write_aliases(&self, aliases: &BTreeMap<String, ModelRef>) -> Result<(), RegistryError> {
        let path = self.aliases_path();
        let tmp = self.root.join(".aliases.json.tmp");
        let bytes =
            serde_json::to_vec_pretty(aliases).map_err(|source| RegistryError::Corrupt {
                path: path.display().to_string(),
                source,
            })?;
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))
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

/// Where a roll-back of `alias` leads, replaying its history as a stack: a move pushes its
/// target, a roll-back pops, a removal empties it. The answer is the entry under the top.
fn rollback_target(history: &[HistoryEvent], alias: &str) -> Option<ModelRef> {
    let mut stack: Vec<&ModelRef> = Vec::new();
    for event in history {
        match event {
            HistoryEvent::AliasMoved {
                alias: a,
                model,
                action,
                ..
            } if a == alias => match action {
                AliasAction::Set => {
                    if stack.last() != Some(&model) {
                        stack.push(model);
                    }
                }
                AliasAction::Rollback => {
                    stack.pop();
                }
            },
            HistoryEvent::AliasRemoved { alias: a, .. } if a == alias => stack.clear(),
            _ => {}
        }
    }
    let n = stack.len();
    (n >= 2).then(|| stack[n - 2].clone())
}

#[cfg(test)]
mod tests;
