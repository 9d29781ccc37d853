//! Errors of the core crate.
//!
//! Every fallible operation returns [`Result`]. Each variant maps to a short, stable
//! [`Error::code`] that the wasm bindings attach to the JavaScript `Error` they throw, so
//! callers can branch on the code and show the message.

use thiserror::Error;

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a bundle was refused. Produced only by [`crate::bundle::BundleContents::decode`] and [`crate::model::Model::load`]; a refused bundle
/// leaves nothing half-loaded behind.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BundleError {
    /// The bytes end before the structure they declare does (a cut download, a short read).
    #[error("bundle is truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the header or the section table says are needed.
        needed: u64,
        /// Bytes actually given.
        available: u64,
    },
    /// The first eight bytes are not the edgerec magic: this is not a bundle.
    #[error("not an edgerec bundle (bad magic bytes)")]
    BadMagic,
    /// The container or one section uses a version this reader does not know.
    #[error("unsupported {what} version {found} (this reader supports {supported})")]
    UnsupportedVersion {
        /// `"format"` for the container, otherwise the section tag.
        what: String,
        /// The version found in the bytes.
        found: u16,
        /// The newest version this reader supports.
        supported: u16,
    },
    /// A sha256 in the header does not match the bytes it covers (bit rot, tampering).
    #[error("checksum mismatch in {what}")]
    ChecksumMismatch {
        /// `"header"` or the section tag.
        what: String,
    },
    /// The bytes are intact but do not describe a valid bundle (inconsistent sizes, bad UTF-8,
    /// out-of-range ids, duplicate sections…).
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// `"header"` or the section tag.
        what: String,
        /// What is wrong, for humans.
        reason: String,
    },
    /// A model in the bundle does not match the contract it ships with, or the contract does
    /// not match the bundle (a ranker whose inputs differ from the bundle's features, an ONNX
    /// model tract cannot load, …).
    #[error("ranker contract mismatch: {reason}")]
    Contract {
        /// What differs, for humans.
        reason: String,
    },
    /// A section this version of the format requires is absent.
    #[error("bundle has no {tag} section")]
    MissingSection {
        /// The four-letter tag of the missing section.
        tag: String,
    },
}

/// Why exported user state was refused. Produced only by [`crate::state::UserState::import`];
/// a refused blob is refused whole, so the caller keeps whatever state it had.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StateError {
    /// The bytes end before the header or the payload it declares does.
    #[error("user state is truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the header says are needed.
        needed: u64,
        /// Bytes actually given.
        available: u64,
    },
    /// The first four bytes are not the user-state magic: this is not exported user state.
    #[error("not edgerec user state (bad magic bytes)")]
    BadMagic,
    /// The blob was written by a format version this reader does not know (a newer app).
    #[error("unsupported user state version {found} (this reader supports {supported})")]
    UnsupportedVersion {
        /// The version found in the bytes.
        found: u16,
        /// The newest version this reader supports.
        supported: u16,
    },
    /// The sha256 in the header does not match the payload (bit rot, tampering).
    #[error("user state checksum mismatch")]
    ChecksumMismatch,
    /// The bytes are intact but do not describe a valid state (bad lengths, trailing bytes,
    /// caps exceeded, unsorted times, fractions outside 0–1, bad UTF-8…).
    #[error("malformed user state: {0}")]
    Malformed(String),
}

/// Every error the core returns.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Error {
    /// A bundle could not be loaded.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// A caller passed a value outside the documented domain (k = 0, an unknown device or
    /// genre name, an impossible time zone offset…).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The ranker failed while scoring (tract reported an error).
    #[error("ranker failed: {0}")]
    Ranker(String),
    /// Exported user state could not be imported.
    #[error(transparent)]
    State(#[from] StateError),
}

impl Error {
    /// A short, stable, snake_case code for the error, used by the JS bindings and logs:
    /// `truncated`, `bad_magic`, `unsupported_version`, `checksum_mismatch`, `malformed`,
    /// `missing_section`, `contract_mismatch`, `invalid_argument` or `ranker_failed`; for user
    /// state, `unsupported_state_version` (written by a newer app: keep the blob) or
    /// `corrupt_state` (every other refusal: the blob is unusable).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Bundle(b) => match b {
                BundleError::Truncated { .. } => "truncated",
                BundleError::BadMagic => "bad_magic",
                BundleError::UnsupportedVersion { .. } => "unsupported_version",
                BundleError::ChecksumMismatch { .. } => "checksum_mismatch",
                BundleError::Malformed { .. } => "malformed",
                BundleError::MissingSection { .. } => "missing_section",
                BundleError::Contract { .. } => "contract_mismatch",
            },
            Error::InvalidArgument(_) => "invalid_argument",
            Error::Ranker(_) => "ranker_failed",
            Error::State(StateError::UnsupportedVersion { .. }) => "unsupported_state_version",
            Error::State(_) => "corrupt_state",
        }
    }
}
