//! A world's user as a device would know them: the local [`UserState`] a client records from
//! the user's own plays and profile, the input of the one recommendation path
//! ([`edgerec::Recommender::recommend_row`]).
//!
//! ```
//! # use edgerec_fit::data::WorldData;
//! use edgerec_fit::device::{StateOptions, user_state};
//! # fn demo(world: &WorldData) -> anyhow::Result<()> {
//! let state = user_state(world, Some(0), &StateOptions { before: 893_286_638, ..StateOptions::default() })?;
//! assert!(state.plays().iter().all(|p| p.started < 893_286_638));
//! # Ok(()) }
//! ```

use anyhow::{Context as _, Result};
use edgerec::features::Gender;
use edgerec::state::{Progress, UserState};

use crate::data::WorldData;

/// How [`user_state`] builds a state.
#[derive(Debug, Clone)]
pub struct StateOptions {
    /// Only plays strictly before this time (unix seconds) are in the state.
    pub before: i64,
    /// Genre names a user without plays picked at onboarding.
    pub onboarding_genres: Vec<String>,
    /// The offset from UTC the device is set to, minutes.
    pub utc_offset_minutes: i32,
}

impl Default for StateOptions {
    fn default() -> Self {
        StateOptions {
            before: i64::MAX,
            onboarding_genres: Vec::new(),
            utc_offset_minutes: 0,
        }
    }
}

/// The local state of the user at dense index `user` (`None`: a user the world does not
/// know): each of their plays before [`StateOptions::before`] as the client recorded it
/// (title, start, fraction, seconds, device), their profile (age when known, gender, country
/// and language), the device's UTC offset, and onboarding genres when they have no play.
///
/// Errors: a play or profile value the state refuses (a fraction outside 0–1, an ISO code
/// that is not one, an onboarding genre name that is too long).
pub fn user_state(data: &WorldData, user: Option<usize>, o: &StateOptions) -> Result<UserState> {
    let mut state = UserState::new();
    let mut played = false;
    if let Some(u) = user {
        for p in data.plays[u].iter().filter(|p| p.time < o.before) {
            let progress = Progress {
                fraction: p.fraction,
                watched_s: p.watched_s,
                device: p.device,
            };
            state
                .record_progress(p.item_id, p.time, progress)
                .with_context(|| format!("play of item {} at {}", p.item_id, p.time))?;
            played = true;
        }
        let profile = &data.users[u];
        let s = state.settings_mut();
        s.set_age((profile.age > 0).then_some(profile.age.min(120)));
        s.set_gender(Gender::from_code(&profile.gender).unwrap_or(Gender::Unknown));
        s.set_country(Some(&profile.country))?;
        s.set_language(Some(&profile.language))?;
    }
    state
        .settings_mut()
        .set_utc_offset_minutes(o.utc_offset_minutes)?;
    if !played && !o.onboarding_genres.is_empty() {
        state.set_onboarding(&o.onboarding_genres, &[])?;
    }
    Ok(state)
}
