use std::path::PathBuf;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The plot font does not exist. On Debian/Ubuntu install `fonts-dejavu-core`, or point
    /// [`crate::ReportOptions::font_path`] at another TTF/OTF file.
    #[error(
        "font file {} not found: install the Debian package `{}` (apt-get install {}) or set ReportOptions::font_path to a TrueType font",
        .path.display(), crate::DEFAULT_FONT_PACKAGE, crate::DEFAULT_FONT_PACKAGE
    )]
    FontMissing {
        /// The path that was tried.
        path: PathBuf,
    },
    /// The plot font exists but could not be read.
    #[error("failed to read font file {}", .path.display())]
    FontRead {
        /// The path that was tried.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The plot font is not a TrueType/OpenType font.
    #[error("font file {} is not a valid TrueType/OpenType font", .path.display())]
    InvalidFont {
        /// The path that was tried.
        path: PathBuf,
    },
    /// The input is inconsistent (e.g. histogram counts that do not match the bin edges).
    #[error("invalid report input: {0}")]
    InvalidInput(String),
    /// `plotters` failed while drawing or encoding a plot.
    #[error("failed to draw {file}: {message}")]
    Plot {
        /// File name of the plot.
        file: &'static str,
        /// The `plotters` error, rendered (its type is generic over the backend).
        message: String,
    },
    /// Creating the directory or writing a Markdown file failed.
    #[error("failed to write {}", .path.display())]
    Io {
        /// The path being written.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
}
