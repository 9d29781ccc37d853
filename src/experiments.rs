//! A/B tests: which arm of an experiment a device is in, computed on the device.
//!
//! An [`Experiment`] names its arms, each with a traffic share and the release channel its
//! devices sync (`edgerec publish --channel`), so an arm *is* a model: the control arm's
//! devices sync `stable`, a treatment's devices a channel holding the candidate model. A
//! device's arm is a pure function of the experiment's salt and the device's pseudonymous
//! id ([`Experiment::assign`]): the same device lands in the same arm on every call, on every
//! platform, with no server round trip and no list of devices anywhere; changing the salt
//! reshuffles everyone (a new experiment). The arm travels with every event the device sends
//! ([`Assignment::label`] in `edgerec::events::Envelope::arm`), so the server's report can
//! split the online metrics by arm.
//!
//! The definition is JSON (serde, camelCase), parsed by the caller (the bindings from a JS
//! object, the server and CLI with serde_json) and then checked with [`Experiment::validate`]:
//!
//! ```json
//! {"schema": "edgerec-experiments/1", "name": "ranker-gbdt", "salt": "2026-12-a",
//!  "arms": [{"name": "control", "share": 0.5, "channel": "stable"},
//!           {"name": "gbdt", "share": 0.5, "channel": "exp-gbdt"}]}
//! ```
//!
//! ```
//! use edgerec::experiments::{Arm, Experiment};
//! let e = Experiment {
//!     schema: edgerec::experiments::SCHEMA.into(),
//!     name: "ranker-gbdt".into(),
//!     salt: "2026-12-a".into(),
//!     arms: vec![
//!         Arm { name: "control".into(), share: 0.5, channel: "stable".into() },
//!         Arm { name: "gbdt".into(), share: 0.5, channel: "exp-gbdt".into() },
//!     ],
//! };
//! e.validate()?;
//! let a = e.assign("device-1f3a")?;
//! assert_eq!(a, e.assign("device-1f3a")?); // deterministic
//! assert!(a.label == "ranker-gbdt.control" || a.label == "ranker-gbdt.gbdt");
//! # Ok::<(), edgerec::experiments::ExperimentError>(())
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The schema name every definition carries.
pub const SCHEMA: &str = "edgerec-experiments/1";
/// The most arms of one experiment.
pub const MAX_ARMS: usize = 16;
/// The longest experiment, arm or channel name and salt, in bytes (so that
/// `"{experiment}.{arm}"` fits an event's 64-byte `arm` field, names are at most 31 bytes).
pub const MAX_NAME_BYTES: usize = 31;
/// How far the shares may sum from 1.
const SHARE_TOLERANCE: f64 = 1e-6;

/// One arm: its name, the share of devices it gets, and the channel they sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Arm {
    /// 1 to [`MAX_NAME_BYTES`] of `a-z 0-9 - _`.
    pub name: String,
    /// Its share of devices, in `(0, 1]`; an experiment's shares sum to 1.
    pub share: f64,
    /// The release channel its devices sync (a channel name of the release store).
    pub channel: String,
}

/// An experiment (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Experiment {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// 1 to [`MAX_NAME_BYTES`] of `a-z 0-9 - _`.
    pub name: String,
    /// Mixed into every device's hash: a new salt is a new random split.
    pub salt: String,
    /// 1 to [`MAX_ARMS`] arms, distinct names.
    pub arms: Vec<Arm>,
}

/// Where a device landed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    /// The experiment's name.
    pub experiment: String,
    /// The arm's name.
    pub arm: String,
    /// The channel to sync.
    pub channel: String,
    /// `"{experiment}.{arm}"`: what events carry as their `arm`.
    pub label: String,
}

/// Why a definition or a device id was refused, naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentError {
    /// The offending field (`"arms"`, `"share"`, `"deviceId"` …).
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ExperimentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for ExperimentError {}

fn refuse(field: &'static str, reason: impl Into<String>) -> ExperimentError {
    ExperimentError {
        field,
        reason: reason.into(),
    }
}

fn check_name(field: &'static str, s: &str) -> Result<(), ExperimentError> {
    let ok = !s.is_empty()
        && s.len() <= MAX_NAME_BYTES
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(refuse(
            field,
            format!("{s:?} must be 1 to {MAX_NAME_BYTES} bytes of a-z, 0-9, '-' or '_'"),
        ))
    }
}

impl Experiment {
    /// Checks the schema, names, shares (each in `(0, 1]`, summing to 1) and that arm names
    /// are distinct.
    pub fn validate(&self) -> Result<(), ExperimentError> {
        if self.schema != SCHEMA {
            return Err(refuse(
                "schema",
                format!("{:?} is not {SCHEMA:?}", self.schema),
            ));
        }
        check_name("name", &self.name)?;
        if self.salt.is_empty() || self.salt.len() > MAX_NAME_BYTES {
            return Err(refuse(
                "salt",
                format!("1 to {MAX_NAME_BYTES} bytes, got {}", self.salt.len()),
            ));
        }
        if self.arms.is_empty() || self.arms.len() > MAX_ARMS {
            return Err(refuse(
                "arms",
                format!("1 to {MAX_ARMS} arms, got {}", self.arms.len()),
            ));
        }
        let mut total = 0.0;
        for (i, a) in self.arms.iter().enumerate() {
            check_name("arms.name", &a.name)?;
            check_name("arms.channel", &a.channel)?;
            if !(a.share > 0.0 && a.share <= 1.0) {
                return Err(refuse(
                    "arms.share",
                    format!(
                        "arm {:?}: a share is within (0, 1], got {}",
                        a.name, a.share
                    ),
                ));
            }
            if self.arms[..i].iter().any(|b| b.name == a.name) {
                return Err(refuse("arms.name", format!("{:?} twice", a.name)));
            }
            total += a.share;
        }
        if (total - 1.0).abs() > SHARE_TOLERANCE {
            return Err(refuse(
                "arms.share",
                format!("the shares sum to {total}, not 1"),
            ));
        }
        Ok(())
    }

    /// The device's position in `[0, 1)`: the first 8 bytes of
    /// SHA-256(`"edgerec-ab/1" 0 salt 0 device_id`), as a fraction of 2^64.
    pub fn position(&self, device_id: &str) -> f64 {
        let mut h = Sha256::new();
        h.update(b"edgerec-ab/1\0");
        h.update(self.salt.as_bytes());
        h.update(b"\0");
        h.update(device_id.as_bytes());
        let d = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&d[..8]);
        // 53 bits: exactly representable, strictly below 1.
        (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The arm `device_id` is in: the arm whose cumulative share interval holds the device's
    /// [`position`](Self::position). Validates the definition and the id (1 to 64 bytes).
    pub fn assign(&self, device_id: &str) -> Result<Assignment, ExperimentError> {
        self.validate()?;
        if device_id.is_empty() || device_id.len() > crate::events::MAX_ID_BYTES {
            return Err(refuse(
                "deviceId",
                format!("1 to {} bytes", crate::events::MAX_ID_BYTES),
            ));
        }
        let x = self.position(device_id);
        let mut upper = 0.0;
        let mut chosen = self.arms.last();
        for a in &self.arms {
            upper += a.share;
            if x < upper {
                chosen = Some(a);
                break;
            }
        }
        let a = chosen.ok_or_else(|| refuse("arms", "no arms"))?;
        Ok(Assignment {
            experiment: self.name.clone(),
            arm: a.name.clone(),
            channel: a.channel.clone(),
            label: format!("{}.{}", self.name, a.name),
        })
    }

    /// The index in [`Experiment::arms`] of the arm a `label` (as events carry it) names, if
    /// it is one of this experiment's.
    pub fn arm_index_of_label(&self, label: &str) -> Option<usize> {
        let (exp, arm) = label.split_once('.')?;
        (exp == self.name)
            .then(|| self.arms.iter().position(|a| a.name == arm))
            .flatten()
    }

    /// The arm a `label` (as events carry it) names, if it is one of this experiment's.
    pub fn arm_of_label(&self, label: &str) -> Option<&Arm> {
        self.arm_index_of_label(label).map(|i| &self.arms[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(shares: &[f64]) -> Experiment {
        Experiment {
            schema: SCHEMA.into(),
            name: "rank".into(),
            salt: "s1".into(),
            arms: shares
                .iter()
                .enumerate()
                .map(|(i, &share)| Arm {
                    name: format!("a{i}"),
                    share,
                    channel: format!("c{i}"),
                })
                .collect(),
        }
    }

    #[test]
    fn shares_are_honoured_and_assignment_is_stable() {
        let e = exp(&[0.2, 0.3, 0.5]);
        let n = 20_000;
        let mut counts = [0usize; 3];
        for d in 0..n {
            let a = e.assign(&format!("device-{d}")).unwrap();
            assert_eq!(a, e.assign(&format!("device-{d}")).unwrap());
            counts[a.arm[1..].parse::<usize>().unwrap()] += 1;
            assert_eq!(a.label, format!("rank.{}", a.arm));
            assert_eq!(e.arm_of_label(&a.label).unwrap().channel, a.channel);
        }
        for (c, share) in counts.iter().zip([0.2, 0.3, 0.5]) {
            let expected = n as f64 * share;
            let sd = (n as f64 * share * (1.0 - share)).sqrt();
            assert!(
                (*c as f64 - expected).abs() < 4.0 * sd,
                "{counts:?} vs shares 0.2/0.3/0.5"
            );
        }
    }

    #[test]
    fn a_new_salt_reshuffles_devices() {
        let a = exp(&[0.5, 0.5]);
        let b = Experiment {
            salt: "s2".into(),
            ..a.clone()
        };
        let same = (0..2_000)
            .filter(|d| {
                let id = format!("d{d}");
                a.assign(&id).unwrap().arm == b.assign(&id).unwrap().arm
            })
            .count();
        // Independent splits agree about half the time.
        assert!((800..1_200).contains(&same), "{same}");
    }

    #[test]
    fn bad_definitions_name_their_field() {
        let field = |e: Experiment| e.validate().unwrap_err().field;
        assert_eq!(field(exp(&[0.5, 0.4])), "arms.share");
        assert_eq!(field(exp(&[1.2, -0.2])), "arms.share");
        assert_eq!(field(exp(&[f64::NAN, 1.0])), "arms.share");
        assert_eq!(field(exp(&[])), "arms");
        assert_eq!(field(exp(&[0.05; 20])), "arms");
        let mut e = exp(&[0.5, 0.5]);
        e.arms[1].name = "a0".into();
        assert_eq!(field(e), "arms.name");
        let mut e = exp(&[1.0]);
        e.name = "Rank.v2".into();
        assert_eq!(field(e), "name");
        let mut e = exp(&[1.0]);
        e.arms[0].channel = "../stable".into();
        assert_eq!(field(e), "arms.channel");
        let mut e = exp(&[1.0]);
        e.schema = "edgerec-experiments/2".into();
        assert_eq!(field(e), "schema");
        assert_eq!(exp(&[1.0]).assign("").unwrap_err().field, "deviceId");
        assert_eq!(
            exp(&[1.0]).assign(&"x".repeat(65)).unwrap_err().field,
            "deviceId"
        );
    }

    #[test]
    fn the_label_fits_an_event_arm() {
        let mut e = exp(&[1.0]);
        e.name = "n".repeat(MAX_NAME_BYTES);
        e.arms[0].name = "a".repeat(MAX_NAME_BYTES);
        let a = e.assign("d").unwrap();
        assert!(a.label.len() <= crate::events::MAX_ID_BYTES);
    }

    #[test]
    fn the_hash_is_pinned() {
        // Devices on every platform must agree: a change here moves devices between arms.
        // The value: Python's hashlib over the same bytes (b"edgerec-ab/1\0s1\0device-1").
        let e = exp(&[0.5, 0.5]);
        assert_eq!(e.position("device-1"), 0.7729627294748652);
        assert_eq!(e.assign("device-1").unwrap().arm, "a1");
    }
}
