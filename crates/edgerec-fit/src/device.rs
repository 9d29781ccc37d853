//! A world's user as a device would know them: the local [`UserState`] a client records from
//! the user's own plays and profile, the input of the one recommendation path
//! ([`edgerec::Recommender::recommend_row`]); and that path's rows for an evaluation's cases
//! ([`rows`]), so the offline evaluation scores the row users get.
//!
//! ```
//! # use edgerec_fit::data::WorldData;
//! use edgerec_fit::device::{StateOptions, user_state};
//! # fn demo(world: &WorldData) -> anyhow::Result<()> {
//! let state = user_state(world, Some(0), &StateOptions { before: 893_286_638, ..StateOptions::default() })?;
//! assert!(state.plays().iter().all(|p| p.started < 893_286_638));
//! # Ok(()) }
//! ```

use std::collections::{HashMap, HashSet};

use anyhow::{Context as _, Result};
use edgerec::context::{Context, Device};
use edgerec::features::Gender;
use edgerec::rerank::RerankOverrides;
use edgerec::state::{Progress, UserState};
use edgerec::{Recommender, RowRequest};
use edgerec_data::schema::{DEVICES, Play};
use rayon::prelude::*;

use crate::data::WorldData;
use crate::sources::Answer;
use crate::split::{Case, Split};

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
    user_state_with(data, user, &|p: &Play| p.time < o.before, o)
}

/// [`user_state`] with the plays `keep` accepts instead of those before
/// [`StateOptions::before`] (which is then unused).
pub fn user_state_with(
    data: &WorldData,
    user: Option<usize>,
    keep: &dyn Fn(&Play) -> bool,
    o: &StateOptions,
) -> Result<UserState> {
    let mut state = UserState::new();
    let mut played = false;
    if let Some(u) = user {
        for p in data.plays[u].iter().filter(|p| keep(p)) {
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

/// How the device serves an evaluation's requests: with the bundle's ranker or the blend's
/// order, and the bundle's rerank settings or others.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Serving {
    /// Leave the bundle's ranker out (the blend's order).
    pub no_ranker: bool,
    /// Changes to the bundle's rerank settings (MMR trade-off, fatigue, per-genre cap).
    pub rerank: RerankOverrides,
}

/// The blend's own order: no ranker, relevance only (no MMR), no fatigue filter, no genre
/// cap — only the filters that cannot be turned off (finished, too mature).
pub const BLEND_ORDER: Serving = Serving {
    no_ranker: true,
    rerank: RerankOverrides {
        lambda: Some(1.0),
        fatigue_impressions: Some(0),
        max_per_genre: Some(None),
    },
};

/// The stages of the row users get, each added to the one before: the name of the
/// evaluation's system and how the device serves it. The blend's order with only the filters
/// that cannot be turned off (finished, too mature), then the bundle's ranker, then its other
/// filters (fatigue, per-genre cap), then MMR: the last is the row users get (`device`), and
/// each difference is what one stage adds or costs.
pub fn stages() -> [(&'static str, Serving); 4] {
    [
        ("device-blend", BLEND_ORDER),
        (
            "device-ranked",
            Serving {
                no_ranker: false,
                ..BLEND_ORDER
            },
        ),
        (
            "device-filtered",
            Serving {
                no_ranker: false,
                rerank: RerankOverrides {
                    lambda: Some(1.0),
                    ..RerankOverrides::default()
                },
            },
        ),
        ("device", Serving::default()),
    ]
}

/// The user's most frequent device in their plays before `time` (ties to the first in
/// [`DEVICES`]), or a TV for a user without plays.
fn usual_device(plays: &[Play], time: i64) -> Device {
    let mut counts = [0usize; DEVICES.len()];
    for p in plays.iter().filter(|p| p.time < time) {
        if let Some(d) = DEVICES.iter().position(|d| *d == p.device) {
            counts[d] += 1;
        }
    }
    let best = (0..DEVICES.len()).max_by_key(|&d| (counts[d], DEVICES.len() - d));
    match best {
        Some(d) if counts[d] > 0 => DEVICES[d],
        _ => Device::Tv,
    }
}

/// The local state of `case`'s user at the request: a user the case treats as new (onboarding
/// picks given) holds only those picks as onboarding titles; any other holds every play before
/// the request, plus the plays in the request's own second that the split puts in the past
/// (MovieLens logs several ratings in one second; the held-out title is never among them).
fn case_state(
    data: &WorldData,
    index: &HashMap<u32, u32>,
    case: &Case,
    past: &HashSet<u32>,
) -> Result<UserState> {
    let u = case.user as usize;
    let o = StateOptions {
        before: case.time,
        onboarding_genres: Vec::new(),
        utc_offset_minutes: data.users[u].utc_offset_minutes,
    };
    if !case.onboarding.is_empty() {
        let mut state = user_state_with(data, Some(u), &|_| false, &o)?;
        let titles: Vec<u32> = case
            .onboarding
            .iter()
            .map(|&i| data.items[i as usize].item_id)
            .collect();
        state.set_onboarding::<&str>(&[], &titles)?;
        return Ok(state);
    }
    let in_past = |p: &Play| {
        p.time < case.time
            || (p.time == case.time
                && index
                    .get(&p.item_id)
                    .is_some_and(|i| past.contains(i) && !case.relevant.contains(i)))
    };
    user_state_with(data, Some(u), &in_past, &o)
}

/// The device pipeline's top `k` for every case, from `rec` — the bundle that would ship
/// for `split`'s past — through the one recommendation path (see [`case_state`] for the
/// states). Rows hold dense item indices (the bundle's catalog is the world's items in table
/// order), best first.
///
/// Errors: a request the device refuses, which a bundle that loaded never does for these
/// states.
pub fn rows(
    rec: &Recommender,
    data: &WorldData,
    split: &Split,
    cases: &[Case],
    k: usize,
    serving: Serving,
) -> Result<Vec<Answer>> {
    let requests = Requests::new(data, split);
    let catalog = &rec.model().contents().catalog;
    cases
        .par_iter()
        .map(|case| {
            let (state, request) = requests.of(case, k, serving)?;
            let row = rec.recommend_row(&state, &request).with_context(|| {
                format!(
                    "the device row of user {}",
                    data.users[case.user as usize].user_id
                )
            })?;
            let row = row
                .items
                .iter()
                .filter_map(|r| catalog.position(r.item_id).map(|p| p as u32))
                .collect();
            Ok(Answer { row, auc: None })
        })
        .collect()
}

/// The device's requests for a split's cases: each case's local state and row request, as
/// [`rows`] makes them (the trainer's examples use the same, [`crate::learned`]).
pub struct Requests<'a> {
    data: &'a WorldData,
    histories: Vec<Vec<(u32, i64)>>,
    index: HashMap<u32, u32>,
}

impl<'a> Requests<'a> {
    /// The requests of `split`'s cases over `data`.
    pub fn new(data: &'a WorldData, split: &Split) -> Requests<'a> {
        Requests {
            data,
            histories: split.histories(data.users.len()),
            index: (0..data.items.len())
                .map(|i| (data.items[i].item_id, i as u32))
                .collect(),
        }
    }

    /// `case`'s local state (see [`case_state`]) and a request for its top `k` at the case's
    /// time, on the user's usual device, served as `serving`.
    pub fn of(&self, case: &Case, k: usize, serving: Serving) -> Result<(UserState, RowRequest)> {
        let data = self.data;
        let u = case.user as usize;
        let past: HashSet<u32> = self.histories[u].iter().map(|p| p.0).collect();
        let state = case_state(data, &self.index, case, &past)?;
        let device = usual_device(&data.plays[u], case.time);
        let offset = data.users[u].utc_offset_minutes;
        let request = RowRequest {
            k: Some(k),
            use_ranker: !serving.no_ranker,
            rerank: serving.rerank,
            ..RowRequest::new(Context::new(device, case.time, offset)?)
        };
        Ok((state, request))
    }
}
