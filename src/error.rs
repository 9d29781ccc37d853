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
    /// Loading the bundle and serving it would need more memory than the caller allows
    /// ([`crate::model::LoadOptions::memory_budget`]); nothing was loaded.
    #[error(
        "the bundle would need about {} MiB ({detail}), above the memory budget of {} MiB",
        needed.div_ceil(1 << 20),
        budget >> 20
    )]
    OverBudget {
        /// Estimated bytes ([`crate::limits::MemoryEstimate::total`]).
        needed: u64,
        /// The budget, in bytes.
        budget: u64,
        /// The estimate by part, for humans.
        detail: String,
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

/// Why a signed release (a manifest, a key set, a section blob) was refused. Produced only by
/// [`crate::release`]; a refused release changes nothing, so the caller keeps serving the
/// model it had. [`Error::code`] gives each variant its own code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReleaseError {
    /// The bytes are not a well-formed manifest, key set or trust root (framing, lengths,
    /// counts, fields out of range). Code `bad_manifest`.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which structure.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A signature does not verify with the key it names. Code `bad_signature`.
    #[error("bad signature on the {what}")]
    BadSignature {
        /// What was signed.
        what: String,
    },
    /// The signer is not trusted: too few trusted root keys signed the key set, or the
    /// manifest's key is not one the key set delegates. Code `untrusted_key`.
    #[error("untrusted key: {0}")]
    UntrustedKey(String),
    /// Older than what the device already holds (a manifest's version, a key set's serial).
    /// Code `rollback`.
    #[error("rollback refused: {what} {found} is older than the installed {installed}")]
    Rollback {
        /// `manifest version` or `key set serial`.
        what: String,
        /// What the bytes carry.
        found: u64,
        /// What the device holds.
        installed: u64,
    },
    /// Past its expiry time. Code `expired`.
    #[error("{what} expired at {expires} (now {now})")]
    Expired {
        /// The manifest or the key set.
        what: String,
        /// Its expiry (unix seconds).
        expires: i64,
        /// The time it was checked at.
        now: i64,
    },
    /// Signed for another channel than the one asked for. Code `wrong_channel`.
    #[error("manifest is for channel {found:?}, expected {expected:?}")]
    WrongChannel {
        /// The channel asked for.
        expected: String,
        /// The manifest's channel.
        found: String,
    },
    /// A section's bytes differ from what the manifest lists (length or sha256), or the
    /// sections do not rebuild the bundle the manifest names. Code `section_mismatch`.
    #[error("section mismatch: {0}")]
    SectionMismatch(String),
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
    /// A signed release was refused.
    #[error(transparent)]
    Release(#[from] ReleaseError),
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
                BundleError::OverBudget { .. } => "over_budget",
                BundleError::Contract { .. } => "contract_mismatch",
            },
            Error::InvalidArgument(_) => "invalid_argument",
            Error::Ranker(_) => "ranker_failed",
            Error::State(StateError::UnsupportedVersion { .. }) => "unsupported_state_version",
            Error::State(_) => "corrupt_state",
            Error::Release(r) => match r {
                ReleaseError::Malformed { .. } => "bad_manifest",
                ReleaseError::BadSignature { .. } => "bad_signature",
                ReleaseError::UntrustedKey(_) => "untrusted_key",
                ReleaseError::Rollback { .. } => "rollback",
                ReleaseError::Expired { .. } => "expired",
                ReleaseError::WrongChannel { .. } => "wrong_channel",
                ReleaseError::SectionMismatch(_) => "section_mismatch",
            },
        }
    }
}
