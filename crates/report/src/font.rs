//! Loading the plot font and registering it with `plotters`.
//!
//! `plotters`' `ab_glyph` text backend keeps a process-wide table of fonts and wants
//! `&'static` bytes, so each distinct font file is read once, leaked (a few hundred KiB,
//! once per path for the life of the process) and registered under its own family name;
//! the plots then name that family explicitly. The first font loaded is also registered as
//! `sans-serif`, the family `plotters` uses for text we do not style ourselves.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use plotters::style::{FontStyle, register_font};

use crate::error::ReportError;

static LOADED: OnceLock<Mutex<HashMap<PathBuf, &'static str>>> = OnceLock::new();

/// Returns the `plotters` font family name for the font at `path`, loading it on first use.
pub(crate) fn load(path: &Path) -> Result<&'static str, ReportError> {
    let mut loaded = LOADED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(family) = loaded.get(path) {
        return Ok(family);
    }
    let bytes = std::fs::read(path).map_err(|source| match source.kind() {
        ErrorKind::NotFound => ReportError::FontMissing {
            path: path.to_path_buf(),
        },
        _ => ReportError::FontRead {
            path: path.to_path_buf(),
            source,
        },
    })?;
    if bytes.len() < 12 {
        // Catch empty/truncated files before leaking anything.
        return Err(ReportError::InvalidFont {
            path: path.to_path_buf(),
        });
    }
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    let family: &'static str =
        Box::leak(format!("vigil-report-font-{}", loaded.len()).into_boxed_str());
    register_font(family, FontStyle::Normal, bytes).map_err(|_| ReportError::InvalidFont {
        path: path.to_path_buf(),
    })?;
    if loaded.is_empty() {
        register_font("sans-serif", FontStyle::Normal, bytes).map_err(|_| {
            ReportError::InvalidFont {
                path: path.to_path_buf(),
            }
        })?;
    }
    loaded.insert(path.to_path_buf(), family);
    Ok(family)
}
