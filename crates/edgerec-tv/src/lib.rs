//! The edgerec core behind a plain, C-style ABI, for native TV apps (a C++ or Kotlin shell
//! embedding a wasm runtime such as wasmi, WAMR or wasmtime). Built as
//! `pkg/tv/edgerec_tv.wasm` by `scripts/build-tv.sh`: no JS glue, no SIMD, no imports at all —
//! the module exports its memory and the functions below, and nothing else is needed to run it.
//! `edgerec_tv.h` beside this crate declares them; `README.md` is the guide for a TV shell.
//!
//! # Model
//!
//! Everything the module owns is behind a *handle*, a positive `i32`: byte buffers, loaded
//! recommenders and user states. The host never frees module memory itself and never holds a
//! pointer across calls that allocate; it asks for a buffer, writes into it, and passes the
//! handle. Results come back as new buffers (JSON, or the user state's bytes), which the host
//! reads and frees. Handles are never reused, so a freed or made-up handle is refused
//! (`EDGEREC_E_BAD_HANDLE`) instead of reaching someone else's object.
//!
//! Every function returning `i32` returns a handle or `0` on success and a negative
//! [error code](ErrorCode) on failure; `edgerec_last_error` then gives `{"code", "message"}` as
//! JSON. The row options and the row are the npm package's `RowOptions` and `Row`
//! ([`edgerec::wire`], the same checks), without `timings` (the module has no clock).
//!
//! Nothing here panics on bad input (a panic in wasm traps and the instance is lost): lengths
//! are bounded before allocating, allocation failure is an error code, and every byte from
//! the host goes through the core's checked decoders.

use std::cell::RefCell;
use std::collections::BTreeMap;

use edgerec::context::Device;
use edgerec::state::{Progress, UserState};
use edgerec::wire;
use edgerec::{Error, Recommender};

/// The ABI's version: changes whenever a function's meaning or signature does.
pub const ABI_VERSION: u32 = 1;

/// The largest buffer the host may ask for (1 GiB; a bundle of 20k titles is ~10 MB).
pub const MAX_BUFFER_BYTES: u32 = 1 << 30;

/// Why a call failed: the negative value it returned. The names are the core's
/// [`Error::code`]s, plus `bad_handle` and `out_of_memory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ErrorCode {
    /// An argument outside its domain (a bad option, an unknown device, k = 0…).
    InvalidArgument = -1,
    /// A handle that is not (or no longer) an object of the kind the call needs.
    BadHandle = -2,
    /// The module could not allocate (a buffer past [`MAX_BUFFER_BYTES`], memory exhausted).
    OutOfMemory = -3,
    /// The bundle ends before the structure it declares.
    Truncated = -4,
    /// Not an edgerec bundle.
    BadMagic = -5,
    /// A bundle or section version this module does not know.
    UnsupportedVersion = -6,
    /// A checksum does not match (bit rot, tampering).
    ChecksumMismatch = -7,
    /// Intact bytes that do not describe a valid bundle.
    Malformed = -8,
    /// A required section is missing.
    MissingSection = -9,
    /// The bundle would need more memory than the budget given to `edgerec_recommender_load`.
    OverBudget = -10,
    /// A model does not match its contract.
    ContractMismatch = -11,
    /// The ranker failed while scoring.
    RankerFailed = -12,
    /// User state written by a newer app: keep the bytes.
    UnsupportedStateVersion = -13,
    /// User state that cannot be read.
    CorruptState = -14,
    /// Any other refusal (the message says what).
    Other = -15,
    /// A release manifest that cannot be read.
    BadManifest = -16,
    /// A signature that does not verify.
    BadSignature = -17,
    /// A signing key the trust root does not delegate.
    UntrustedKey = -18,
    /// A release or key set older than one already seen.
    Rollback = -19,
    /// A release past its expiry.
    Expired = -20,
    /// A release for another channel.
    WrongChannel = -21,
    /// Bytes that do not match the manifest's section.
    SectionMismatch = -22,
}

impl ErrorCode {
    /// The stable name in `edgerec_last_error`'s `code`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::BadHandle => "bad_handle",
            ErrorCode::OutOfMemory => "out_of_memory",
            ErrorCode::Truncated => "truncated",
            ErrorCode::BadMagic => "bad_magic",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::ChecksumMismatch => "checksum_mismatch",
            ErrorCode::Malformed => "malformed",
            ErrorCode::MissingSection => "missing_section",
            ErrorCode::OverBudget => "over_budget",
            ErrorCode::ContractMismatch => "contract_mismatch",
            ErrorCode::RankerFailed => "ranker_failed",
            ErrorCode::UnsupportedStateVersion => "unsupported_state_version",
            ErrorCode::CorruptState => "corrupt_state",
            ErrorCode::Other => "other",
            ErrorCode::BadManifest => "bad_manifest",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::UntrustedKey => "untrusted_key",
            ErrorCode::Rollback => "rollback",
            ErrorCode::Expired => "expired",
            ErrorCode::WrongChannel => "wrong_channel",
            ErrorCode::SectionMismatch => "section_mismatch",
        }
    }

    fn of(e: &Error) -> ErrorCode {
        const ALL: [ErrorCode; 21] = [
            ErrorCode::InvalidArgument,
            ErrorCode::BadHandle,
            ErrorCode::OutOfMemory,
            ErrorCode::Truncated,
            ErrorCode::BadMagic,
            ErrorCode::UnsupportedVersion,
            ErrorCode::ChecksumMismatch,
            ErrorCode::Malformed,
            ErrorCode::MissingSection,
            ErrorCode::OverBudget,
            ErrorCode::ContractMismatch,
            ErrorCode::RankerFailed,
            ErrorCode::UnsupportedStateVersion,
            ErrorCode::CorruptState,
            ErrorCode::BadManifest,
            ErrorCode::BadSignature,
            ErrorCode::UntrustedKey,
            ErrorCode::Rollback,
            ErrorCode::Expired,
            ErrorCode::WrongChannel,
            ErrorCode::SectionMismatch,
        ];
        let code = e.code();
        ALL.into_iter()
            .find(|c| c.name() == code)
            .unwrap_or(ErrorCode::Other)
    }
}

/// A failure: its code and, for `edgerec_last_error`, what happened.
#[derive(Debug)]
struct Failure {
    code: ErrorCode,
    message: String,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure {
            code: ErrorCode::of(&e),
            message: e.to_string(),
        }
    }
}

fn failure(code: ErrorCode, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

enum Object {
    Buffer(Vec<u8>),
    Recommender(Box<Recommender>),
    State(Box<UserState>),
    Release(Box<edgerec::release::Verified>),
}

impl Object {
    fn kind(&self) -> &'static str {
        match self {
            Object::Buffer(_) => "buffer",
            Object::Recommender(_) => "recommender",
            Object::State(_) => "state",
            Object::Release(_) => "release",
        }
    }
}

/// The module's objects by handle, and the last failure.
#[derive(Default)]
struct Handles {
    /// The last handle given out (handles count up from 1 and are never reused).
    last: i32,
    objects: BTreeMap<i32, Object>,
    last_error: Option<Failure>,
}

thread_local! {
    static HANDLES: RefCell<Handles> = RefCell::default();
}

impl Handles {
    fn insert(&mut self, object: Object) -> Result<i32, Failure> {
        let Some(next) = self.last.checked_add(1) else {
            return Err(failure(
                ErrorCode::OutOfMemory,
                "the module has given out every handle: reload it",
            ));
        };
        self.last = next;
        self.objects.insert(next, object);
        Ok(next)
    }

    fn get(&self, handle: i32, kind: &'static str) -> Result<&Object, Failure> {
        match self.objects.get(&handle) {
            Some(o) if o.kind() == kind => Ok(o),
            Some(o) => Err(failure(
                ErrorCode::BadHandle,
                format!("handle {handle} is a {}, not a {kind}", o.kind()),
            )),
            None => Err(failure(
                ErrorCode::BadHandle,
                format!("handle {handle} is not a live {kind} (never made, or freed)"),
            )),
        }
    }

    fn buffer(&self, handle: i32) -> Result<&[u8], Failure> {
        match self.get(handle, "buffer")? {
            Object::Buffer(b) => Ok(b),
            _ => unreachable_kind(),
        }
    }

    fn buffer_mut(&mut self, handle: i32) -> Result<&mut Vec<u8>, Failure> {
        self.get(handle, "buffer")?;
        match self.objects.get_mut(&handle) {
            Some(Object::Buffer(b)) => Ok(b),
            _ => Err(failure(ErrorCode::BadHandle, "not a buffer")),
        }
    }

    fn recommender(&self, handle: i32) -> Result<&Recommender, Failure> {
        match self.get(handle, "recommender")? {
            Object::Recommender(r) => Ok(r),
            _ => unreachable_kind(),
        }
    }

    fn state(&self, handle: i32) -> Result<&UserState, Failure> {
        match self.get(handle, "state")? {
            Object::State(s) => Ok(s),
            _ => unreachable_kind(),
        }
    }

    fn state_mut(&mut self, handle: i32) -> Result<&mut UserState, Failure> {
        self.get(handle, "state")?;
        match self.objects.get_mut(&handle) {
            Some(Object::State(s)) => Ok(s),
            _ => Err(failure(ErrorCode::BadHandle, "not a state")),
        }
    }

    fn release(&self, handle: i32) -> Result<&edgerec::release::Verified, Failure> {
        match self.get(handle, "release")? {
            Object::Release(r) => Ok(r),
            _ => unreachable_kind(),
        }
    }

    /// A new buffer holding `bytes`.
    fn output(&mut self, bytes: Vec<u8>) -> Result<i32, Failure> {
        self.insert(Object::Buffer(bytes))
    }
}

/// `get` checked the kind; the match after it cannot see another (kept panic-free anyway).
fn unreachable_kind<T>() -> Result<T, Failure> {
    Err(failure(ErrorCode::BadHandle, "handle changed kind"))
}

/// Runs `f` on the handles; a failure is recorded for `edgerec_last_error` and returned as
/// its negative code, a success clears the last error.
fn call(f: impl FnOnce(&mut Handles) -> Result<i32, Failure>) -> i32 {
    HANDLES.with(|h| {
        // A re-entrant call cannot happen (the module imports nothing, so it never calls out
        // while holding the borrow); refuse it rather than panic if it ever did.
        let Ok(mut handles) = h.try_borrow_mut() else {
            return ErrorCode::Other as i32;
        };
        match f(&mut handles) {
            Ok(v) => {
                handles.last_error = None;
                v
            }
            Err(e) => {
                let code = e.code as i32;
                handles.last_error = Some(e);
                code
            }
        }
    })
}

/// A zero-filled byte buffer of its own, allocated without aborting when memory is short.
fn zeroed(len: usize) -> Result<Vec<u8>, Failure> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        failure(
            ErrorCode::OutOfMemory,
            format!("cannot allocate {len} bytes"),
        )
    })?;
    v.resize(len, 0);
    Ok(v)
}

/// The device at `index` of [`Device::ALL`] (tv, desktop, mobile, tablet, unknown).
fn device(index: u32) -> Result<Device, Failure> {
    Device::ALL.get(index as usize).copied().ok_or_else(|| {
        failure(
            ErrorCode::InvalidArgument,
            format!(
                "invalid argument: device: {index} is not 0 (tv), 1 (desktop), 2 (mobile), 3 (tablet) or 4 (unknown)"
            ),
        )
    })
}

fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, Failure> {
    serde_json::to_vec(v).map_err(|e| failure(ErrorCode::Other, e.to_string()))
}

// ---- the exports ---------------------------------------------------------------------------

/// The ABI's version ([`ABI_VERSION`]); a host checks it before anything else.
#[unsafe(no_mangle)]
pub extern "C" fn edgerec_abi_version() -> u32 {
    ABI_VERSION
}

/// A new zero-filled buffer of `len` bytes (at most [`MAX_BUFFER_BYTES`]) for the host to
/// write into at `edgerec_buffer_ptr`: returns its handle.
#[unsafe(no_mangle)]
pub extern "C" fn edgerec_buffer_new(len: u32) -> i32 {
    call(|h| {
        if len > MAX_BUFFER_BYTES {
            return Err(failure(
                ErrorCode::OutOfMemory,
                format!("a buffer of {len} bytes is past the limit of {MAX_BUFFER_BYTES}"),
            ));
        }
        let buffer = zeroed(len as usize)?;
        h.insert(Object::Buffer(buffer))
    })
}

/// Where a buffer's bytes start in the module's memory (valid until the next call that
/// allocates: read or write it right away), or 0 for anything but a live buffer.
#[unsafe(no_mangle)]
pub extern "C" fn edgerec_buffer_ptr(buffer: i32) -> usize {
    let mut ptr = 0;
    call(|h| {
        ptr = h.buffer(buffer)?.as_ptr() as usize;
        Ok(0)
    });
    ptr
}

/// A buffer's length in bytes, or an error code.
#[unsafe(no_mangle)]
pub extern "C" fn edgerec_buffer_len(buffer: i32) -> i32 {
    // Buffers are at most MAX_BUFFER_BYTES (2^30) long, so the length fits.
    call(|h| Ok(h.buffer(buffer)?.len() as i32))
}

/// Frees any object (buffer, recommender, state); 0, or `EDGEREC_E_BAD_HANDLE`.
#[unsafe(no_mangle)]
pub extern "C" fn edgerec_free(handle: i32) -> i32 {
    call(|h| match h.objects.remove(&handle) {
        Some(_) => Ok(0),
        None => Err(failure(
            ErrorCode::BadHandle,
            format!("handle {handle} is not live (never made, or freed already)"),
        )),
    })
}

/// The last failure as a new JSON buffer `{"code": "...", "message": "..."}`, or 0 when the
/// last call succeeded. Calling it does not clear the failure.
#[unsafe(no_mangle)]
pub extern "C" fn edgerec_last_error() -> i32 {
    HANDLES.with(|h| {
        let Ok(mut handles) = h.try_borrow_mut() else {
            return ErrorCode::Other as i32;
        };
        let Some(e) = &handles.last_error else {
            return 0;
        };
        #[derive(serde::Serialize)]
        struct E<'a> {
            code: &'a str,
            message: &'a str,
        }
        let bytes = match json(&E {
            code: e.code.name(),
            message: &e.message,
        }) {
            Ok(b) => b,
            Err(e) => return e.code as i32,
        };
        handles.output(bytes).unwrap_or_else(|e| e.code as i32)
    })
}

/// Verifies (every checksum) and loads the bundle in `bundle` (a buffer; the host frees it
/// after): returns the recommender's handle. `memory_budget_bytes` caps what the bundle may
/// need — file, decoded sections, runtimes and one request of the largest size, estimated
/// before anything is built; 0 means the default of 256 MiB. A bundle above it is refused with
/// `EDGEREC_E_OVER_BUDGET`.
#[unsafe(no_mangle)]
pub extern "C" fn edgerec_recommender_load(bundle: i32, memory_budget_bytes: u64) -> i32 {
    call(|h| {
        let mut options = edgerec::model::LoadOptions::default();
        if memory_budget_bytes != 0 {
            options.memory_budget = memory_budget_bytes;
        }
        let rec = Recommender::from_bytes_with(h.buffer(bundle)?, &options)?;
        h.insert(Object::Recommender(Box::new(rec)))
    })
}

/// The memory a loaded bundle was estimated to need, as a new JSON buffer
/// `{"file", "sections", "runtimes", "request", "total"}` (bytes).
#[unsafe(no_mangle)]
pub extern "C" fn edgerec_recommender_memory(recommender: i32) -> i32 {
    call(|h| {
        let e = h.recommender(recommender)?.model().memory_estimate();
        #[derive(serde::Serialize)]
        struct M {
            file: u64,
            sections: u64,
            runtimes: u64,
            request: u64,
            total: u64,
        }
        let bytes = json(&M {
            file: e.file,
            sections: e.sections,
            runtimes: e.runtimes,
            request: e.request,
            total: e.total(),
        })?;
        h.output(bytes)
    })
}

/// A new, empty user state: returns its handle.
#[unsafe(no_mangle)]
pub extern "C" fn edgerec_state_new() -> i32 {
    call(|h| h.insert(Object::State(Box::default())))
}

/// A user state from the bytes `edgerec_state_export` gave (in a buffer): returns its handle.
/// Corrupt bytes are refused whole (`EDGEREC_E_CORRUPT_STATE`); bytes from a newer app with
/// `EDGEREC_E_UNSUPPORTED_STATE_VERSION` (keep them).
#[unsafe(no_mangle)]
pub extern "C" fn edgerec_state_import(bytes: i32) -> i32 {
    call(|h| {
        let state = UserState::import(h.buffer(bytes)?)?;
        h.insert(Object::State(Box::new(state)))
    })
}

/// The state's bytes, to keep on the device, as a new buffer.
#[unsafe(no_mangle)]
pub extern "C" fn edgerec_state_export(state: i32) -> i32 {
    call(|h| {
        let bytes = h.state(state)?.export();
        h.output(bytes)
    })
}

/// Records play progress: `fraction` (0..=1) of title `item_id` watched at `unix_seconds`,
/// `watched_seconds` of it in this play (0 if unknown), on `device` (0 tv, 1 desktop,
/// 2 mobile, 3 tablet, 4 unknown).
#[unsafe(no_mangle)]
pub extern "C" fn edgerec_state_record_play(
    state: i32,
    item_id: u32,
    unix_seconds: i64,
    fraction: f64,
    watched_seconds: u32,
    device_index: u32,
) -> i32 {
    call(|h| {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(failure(
                ErrorCode::InvalidArgument,
                format!("invalid argument: fraction: must be within 0..=1, got {fraction}"),
            ));
        }
        if watched_seconds > edgerec::state::MAX_WATCHED_SECONDS {
            return Err(failure(
                ErrorCode::InvalidArgument,
                format!(
                    "invalid argument: watched_seconds: at most {}, got {watched_seconds}",
                    edgerec::state::MAX_WATCHED_SECONDS
                ),
            ));
        }
        let progress = Progress {
            fraction: fraction as f32,
            watched_s: watched_seconds,
            device: device(device_index)?,
        };
        h.state_mut(state)?
            .record_progress(item_id, unix_seconds, progress)?;
        Ok(0)
    })
}

/// Records that title `item_id` played to its end at `unix_seconds` on `device`.
#[unsafe(no_mangle)]
pub extern "C" fn edgerec_state_record_completion(
    state: i32,
    item_id: u32,
    unix_seconds: i64,
    device_index: u32,
) -> i32 {
    call(|h| {
        let device = device(device_index)?;
        h.state_mut(state)?
            .record_completion(item_id, unix_seconds, device)?;
        Ok(0)
    })
}

/// Records that the titles in `item_ids` (a buffer of little-endian `u32`s) were shown at
/// `unix_seconds` (for fatigue).
#[unsafe(no_mangle)]
pub extern "C" fn edgerec_state_record_impressions(
    state: i32,
    item_ids: i32,
    unix_seconds: i64,
) -> i32 {
    call(|h| {
        let bytes = h.buffer(item_ids)?;
        if !bytes.len().is_multiple_of(4) {
            return Err(failure(
                ErrorCode::InvalidArgument,
                format!(
                    "invalid argument: item_ids: {} bytes is not a whole number of u32s",
                    bytes.len()
                ),
            ));
        }
        let ids: Vec<u32> = bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        h.state_mut(state)?.record_impression(&ids, unix_seconds)?;
        Ok(0)
    })
}

/// Recommends a row: `options` is a buffer holding the JSON of the npm package's `RowOptions`
/// (`{"context": {"device": "tv", "timestamp": <unix s>, "utcOffsetMinutes": 60}, "k": 10}`;
/// unknown keys refused); returns a new buffer with the row's JSON (the package's `Row`
/// without `timings`).
#[unsafe(no_mangle)]
pub extern "C" fn edgerec_recommend_row(recommender: i32, state: i32, options: i32) -> i32 {
    call(|h| {
        let options: wire::RowOptions =
            serde_json::from_slice(h.buffer(options)?).map_err(|e| {
                failure(
                    ErrorCode::InvalidArgument,
                    format!("invalid argument: options: {e}"),
                )
            })?;
        let req = options.to_request()?;
        let rec = h.recommender(recommender)?;
        let row = rec.recommend_row_timed(h.state(state)?, &req, &|| 0.0)?;
        let bytes = json(&wire::row(rec, row, false))?;
        h.output(bytes)
    })
}

fn utf8<'a>(what: &str, bytes: &'a [u8]) -> Result<&'a str, Failure> {
    std::str::from_utf8(bytes).map_err(|e| {
        failure(
            ErrorCode::InvalidArgument,
            format!("invalid argument: {what}: not UTF-8 ({e})"),
        )
    })
}

/// Verifies a signed release manifest (in `manifest`) against a trust root (`trust`: the text
/// `KEY` or `T:KEY,KEY,…`) and the device's expectations (`expect`: JSON
/// `{"channel", "now"?, "installedVersion"?, "keySetSerial"?}`) before reading anything else in
/// it: returns the release's handle. Refusals: `bad_manifest`, `bad_signature`,
/// `untrusted_key`, `rollback`, `expired`, `wrong_channel`.
#[unsafe(no_mangle)]
pub extern "C" fn edgerec_release_verify(manifest: i32, trust: i32, expect: i32) -> i32 {
    call(|h| {
        let e: wire::ReleaseExpect = serde_json::from_slice(h.buffer(expect)?).map_err(|e| {
            failure(
                ErrorCode::InvalidArgument,
                format!("invalid argument: expect: {e}"),
            )
        })?;
        let root = edgerec::release::TrustRoot::parse(utf8("trust", h.buffer(trust)?)?)?;
        let verified =
            edgerec::release::Manifest::verify(h.buffer(manifest)?, &root, &e.to_expect()?)?;
        h.insert(Object::Release(Box::new(verified)))
    })
}

/// A verified release's manifest as a new JSON buffer: `{"version", "channel", "label",
/// "created", "expires", "keySetSerial", "bundleLength", "sections": [{"tag", "version",
/// "length", "sha256"}]}` — the sections to fetch, in order.
#[unsafe(no_mangle)]
pub extern "C" fn edgerec_release_manifest(release: i32) -> i32 {
    call(|h| {
        let m = &h.release(release)?.manifest;
        #[derive(serde::Serialize)]
        struct S {
            tag: String,
            version: u16,
            length: u64,
            sha256: String,
        }
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct M<'a> {
            version: u64,
            channel: &'a str,
            label: &'a str,
            created: i64,
            expires: i64,
            key_set_serial: u64,
            bundle_length: u64,
            sections: Vec<S>,
        }
        let bytes = json(&M {
            version: m.version,
            channel: &m.channel,
            label: &m.label,
            created: m.created,
            expires: m.expires,
            key_set_serial: m.key_set_serial,
            bundle_length: m.bundle_length,
            sections: m
                .sections
                .iter()
                .map(|e| S {
                    tag: String::from_utf8_lossy(&e.tag).into_owned(),
                    version: e.version,
                    length: e.length,
                    sha256: edgerec::release::hex(&e.sha256),
                })
                .collect(),
        })?;
        h.output(bytes)
    })
}

/// Rebuilds the bundle a verified release names from its sections' bytes, concatenated in the
/// manifest's order in `sections` (each checked against its length and sha256 first:
/// `section_mismatch`): returns a new buffer with the bundle, for `edgerec_recommender_load`.
#[unsafe(no_mangle)]
pub extern "C" fn edgerec_release_assemble(release: i32, sections: i32) -> i32 {
    call(|h| {
        let m = &h.release(release)?.manifest;
        let bytes = h.buffer(sections)?;
        let mut payloads = Vec::with_capacity(m.sections.len());
        let mut at = 0usize;
        for e in &m.sections {
            let end = usize::try_from(e.length)
                .ok()
                .and_then(|n| at.checked_add(n))
                .filter(|&end| end <= bytes.len())
                .ok_or_else(|| {
                    Failure::from(Error::Release(edgerec::ReleaseError::SectionMismatch(
                        format!(
                            "the sections given are {} bytes, shorter than the manifest's",
                            bytes.len()
                        ),
                    )))
                })?;
            payloads.push(&bytes[at..end]);
            at = end;
        }
        if at != bytes.len() {
            return Err(
                Error::Release(edgerec::ReleaseError::SectionMismatch(format!(
                    "the sections given are {} bytes, the manifest's {at}",
                    bytes.len()
                )))
                .into(),
            );
        }
        let bundle = m.assemble(&payloads)?;
        h.output(bundle)
    })
}

// The wasm32 build's getrandom 0.2 backend (see Cargo.toml): entropy is unsupported here.
#[cfg(target_arch = "wasm32")]
fn no_entropy(_: &mut [u8]) -> Result<(), getrandom::Error> {
    Err(getrandom::Error::UNSUPPORTED)
}
#[cfg(target_arch = "wasm32")]
getrandom::register_custom_getrandom!(no_entropy);

/// Native helpers for tests and hosts linking the crate as Rust: what a wasm host does with
/// the module's memory.
pub mod host {
    use super::*;

    /// Copies `bytes` into a new buffer; returns its handle (or an error code).
    pub fn buffer_from(bytes: &[u8]) -> i32 {
        let handle = edgerec_buffer_new(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        if handle > 0 {
            call(|h| {
                h.buffer_mut(handle)?.copy_from_slice(bytes);
                Ok(handle)
            })
        } else {
            handle
        }
    }

    /// A buffer's bytes (and frees it), or the error code.
    pub fn take_buffer(handle: i32) -> Result<Vec<u8>, i32> {
        let mut out = Vec::new();
        let r = call(|h| {
            out = h.buffer(handle)?.to_vec();
            Ok(0)
        });
        if r < 0 {
            return Err(r);
        }
        edgerec_free(handle);
        Ok(out)
    }
}
