//! How users behave: when they open sessions and on which device, what the (noisy) logging
//! policy shows them, which positions they examine, what they play or search for, how long
//! they watch and whether they carry on with the next episode.
//!
//! One user's whole window is simulated by [`simulate_user`] from the user's own random stream,
//! so users are independent and the driver can run them in any order or in parallel.
//!
//! A session:
//!
//! 1. starts at a local hour drawn around the user's peak hours, on a device drawn from the
//!    user's device preferences (TVs more in the evening, phones more in the day);
//! 2. with probability `search_share` begins with a search: the user picks what they want
//!    (the best of a few candidates by true utility plus noise) and types title words, an
//!    actor's name or a genre; most searches are followed by a play of that title;
//! 3. otherwise (or after the search) shows pages of `page_min..=page_max` titles from the
//!    logging policy: a "continue watching" slot for a series in progress, then a mix of
//!    popular, genre-personalised (from onboarding picks and plays), new and random titles,
//!    ordered by a noisy score. The user examines position `k` with probability
//!    `1 / (1 + k / patience)` and plays an examined title with probability
//!    `σ(utility + click_bias)` ([`crate::truth`]);
//! 4. a play's satisfaction is `utility + N(0, satisfaction_noise)`; it is abandoned early
//!    (under 10%) with probability `σ(abandon[0] − abandon[1]·z)`, otherwise completed with
//!    probability `σ(complete[0] + complete[1]·z + device_completion[d] −
//!    device_long_penalty[d]·max(0, hours − 1.5))`, otherwise stopped part-way (10–80%);
//! 5. the preference context (device, daypart, weekday, season, coming holiday) is taken at
//!    the session's start; `session_id` is `user_id << 32 | the user's session number`;
//! 6. a completed episode autoplays the next one with probability
//!    `σ(binge[0] + binge[1]·binge_u)` (TV: `+ tv_autoplay`).

use edgerec::context::Device;
use serde::{Deserialize, Serialize};

use crate::rng::{AliasTable, Rng};
use crate::schema::{DEVICES, Impression, MediaKind, Play, Search};
use crate::truth::{self, CalendarCache, Context, History, Preference};
use crate::world::{
    self, Catalog, DAY, GENRES, ItemModel, N_GENRES, TitleModel, UserModel, WorldConfig,
};

/// Every parameter of the behaviour model (written to `world.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Behaviour {
    /// Session rate multiplier on Saturdays and Sundays.
    pub weekend_activity: f64,
    /// Session rate multiplier per season (winter, spring, summer, autumn).
    pub season_activity: [f64; 4],
    /// Session rate multiplier on a holiday of the user's country.
    pub holiday_activity: f64,
    /// Standard deviation of session start around a peak hour, hours.
    pub hour_spread: f64,
    /// Share of sessions that start with a search.
    pub search_share: f64,
    /// Share of searches followed by a play of the title searched for.
    pub search_play: f64,
    /// Titles the user weighs before searching.
    pub search_candidates: usize,
    /// Share of search sessions that go on to browse.
    pub search_then_browse: f64,
    /// Fewest titles on a page.
    pub page_min: usize,
    /// Most titles on a page.
    pub page_max: usize,
    /// Most pages per session.
    pub max_pages: usize,
    /// Probability of another page after one without a play.
    pub next_page: f64,
    /// Probability of browsing on after a play.
    pub after_play_browse: f64,
    /// Logging policy mix of sources: popular, personalised, new arrivals, random.
    pub policy_mix: [f64; 4],
    /// Probability a page starts with the next episode of a series in progress.
    pub continue_watching: f64,
    /// Probability the policy shows a series' next (or first) episode rather than a random one.
    pub series_substitute: f64,
    /// Standard deviation of the (uniform) noise in the policy's ordering score.
    pub policy_noise: f64,
    /// Titles added within this many days count as new arrivals.
    pub new_arrival_days: f64,
    /// Standard deviation of satisfaction around utility.
    pub satisfaction_noise: f64,
    /// Early abandonment: intercept and slope.
    pub abandon: [f64; 2],
    /// Completion: intercept and slope.
    pub complete: [f64; 2],
    /// Completion shift per device (tv, desktop, mobile, tablet).
    pub device_completion: [f64; 4],
    /// Completion loss per hour beyond 1.5 h, per device.
    pub device_long_penalty: [f64; 4],
    /// Autoplay of the next episode: intercept and weight of the user's binge pull.
    pub binge: [f64; 2],
    /// Autoplay shift on TVs.
    pub tv_autoplay: f64,
    /// Most episodes autoplayed in a row.
    pub max_autoplay: u32,
}

impl Default for Behaviour {
    fn default() -> Behaviour {
        Behaviour {
            weekend_activity: 1.3,
            season_activity: [1.1, 1.0, 0.85, 1.0],
            holiday_activity: 1.4,
            hour_spread: 1.3,
            search_share: 0.15,
            search_play: 0.8,
            search_candidates: 24,
            search_then_browse: 0.4,
            page_min: 10,
            page_max: 24,
            max_pages: 5,
            next_page: 0.45,
            after_play_browse: 0.35,
            policy_mix: [0.35, 0.35, 0.12, 0.18],
            continue_watching: 0.7,
            series_substitute: 0.9,
            policy_noise: 0.7,
            new_arrival_days: 30.0,
            satisfaction_noise: 1.0,
            abandon: [-1.1, 0.9],
            complete: [-0.5, 0.9],
            device_completion: [0.4, 0.1, -0.4, -0.1],
            device_long_penalty: [0.0, 0.3, 0.9, 0.5],
            binge: [-0.8, 0.6],
            tv_autoplay: 0.5,
            max_autoplay: 5,
        }
    }
}

/// A categorical draw over a list of titles.
#[derive(Debug, Clone)]
struct Pool {
    table: AliasTable,
    titles: Vec<u32>,
}

impl Pool {
    fn new(titles: Vec<u32>, weight: impl Fn(u32) -> f64) -> Option<Pool> {
        let w: Vec<f64> = titles.iter().map(|&t| weight(t)).collect();
        AliasTable::new(&w).map(|table| Pool { table, titles })
    }

    fn sample(&self, rng: &mut Rng) -> u32 {
        self.titles[self.table.sample(rng)]
    }
}

/// The logging policy's precomputed pools: by popularity and by genre, for each maturity
/// limit (so restricted profiles draw only what they may see), and titles by arrival time.
#[derive(Debug, Clone)]
pub struct Policy {
    popular: Vec<Option<Pool>>,
    genre: Vec<Vec<Option<Pool>>>,
    by_added: Vec<(i64, u32)>,
}

impl Policy {
    /// Builds the pools of a catalog. Cost: O(titles × genres-per-title × 5).
    pub fn new(catalog: &Catalog) -> Policy {
        let titles = &catalog.titles;
        let weight = |t: u32| (titles[t as usize].popularity as f64).exp();
        let allowed = |level: usize| {
            (0..titles.len() as u32)
                .filter(move |&t| titles[t as usize].maturity.rank() as usize <= level)
        };
        let popular = (0..5)
            .map(|level| Pool::new(allowed(level).collect(), weight))
            .collect();
        let genre = (0..N_GENRES)
            .map(|gi| {
                (0..5)
                    .map(|level| {
                        let ts: Vec<u32> = allowed(level)
                            .filter(|&t| titles[t as usize].genres & (1 << gi) != 0)
                            .collect();
                        Pool::new(ts, weight)
                    })
                    .collect()
            })
            .collect();
        let mut by_added: Vec<(i64, u32)> = titles
            .iter()
            .enumerate()
            .map(|(i, t)| (t.first_added, i as u32))
            .collect();
        by_added.sort_unstable();
        Policy {
            popular,
            genre,
            by_added,
        }
    }
}

/// Everything the simulation of one user reads, shared by all users.
pub struct Env<'a> {
    /// Sizes, seed, window.
    pub cfg: &'a WorldConfig,
    /// The catalog.
    pub catalog: &'a Catalog,
    /// The logging policy's pools.
    pub policy: &'a Policy,
    /// The preference model.
    pub preference: &'a Preference,
    /// The behaviour model.
    pub behaviour: &'a Behaviour,
    /// Calendar facts of the window.
    pub calendar: &'a CalendarCache,
}

/// The events one or more users produced, in user order and time order within a user.
#[derive(Debug, Clone, Default)]
pub struct Events {
    /// Rows of `impressions`.
    pub impressions: Vec<Impression>,
    /// Rows of `plays`.
    pub plays: Vec<Play>,
    /// Rows of `searches`.
    pub searches: Vec<Search>,
    /// Sessions opened.
    pub sessions: u64,
}

impl Events {
    /// Drops every event but keeps the buffers' capacity.
    pub fn clear(&mut self) {
        self.impressions.clear();
        self.plays.clear();
        self.searches.clear();
        self.sessions = 0;
    }

    /// Appends `other`'s events.
    pub fn append(&mut self, other: &mut Events) {
        self.impressions.append(&mut other.impressions);
        self.plays.append(&mut other.plays);
        self.searches.append(&mut other.searches);
        self.sessions += other.sessions;
    }
}

/// What [`Pages::page`] is asked: who is shown a page, when, where, and how long the logging
/// policy's page would be.
pub struct PageRequest<'r> {
    /// The user.
    pub user: &'r UserModel,
    /// When (unix seconds).
    pub time: i64,
    /// The session's device.
    pub device: Device,
    /// The session's number for the user (the low 32 bits of its `session_id`).
    pub session: u32,
    /// Titles the logging policy would show (drawn whatever the source, so the user's random
    /// stream does not depend on it).
    pub len: usize,
    /// The best `k` items the user could be shown now by the world's true utility in the
    /// session's context (available, within the user's maturity limit, not finished; a
    /// series by the episode the user is due), best first.
    pub oracle: &'r dyn Fn(usize) -> Vec<u32>,
}

/// What sessions are shown, and what is told back of what users did: the logging policy
/// ([`LoggingPolicy`], what [`simulate_user`] uses), or anything else — a recommender being
/// tested online, the oracle.
///
/// A row may hold anything: an item the user cannot play (not yet added, too mature, finished,
/// unknown) is seen and never played.
pub trait Pages {
    /// The row to show, best first; `None`: the logging policy's page.
    fn page(&mut self, request: &PageRequest<'_>) -> Option<Vec<u32>>;
    /// The row `user` was shown at `time` on `device` in their session number `session`
    /// (whichever source made it).
    fn shown(
        &mut self,
        _user: &UserModel,
        _time: i64,
        _device: Device,
        _session: u32,
        _row: &[u32],
    ) {
    }
    /// A play: from `position` of the row last shown, or from elsewhere (a search, autoplay).
    fn played(&mut self, _play: &Play, _position: Option<usize>) {}
    /// A search.
    fn searched(&mut self, _search: &Search) {}
}

/// The world's logging policy (see the module docs).
pub struct LoggingPolicy;

impl Pages for LoggingPolicy {
    fn page(&mut self, _request: &PageRequest<'_>) -> Option<Vec<u32>> {
        None
    }
}

/// One user's state during the simulation.
struct UserSim<'e, 'a> {
    env: &'e Env<'a>,
    user: &'e UserModel,
    rng: Rng,
    history: History,
    /// What the logging policy has observed of the user's genre tastes.
    policy_genres: [f64; N_GENRES],
    session: u64,
    device: Device,
    ctx: Context,
    page: Vec<(f64, u32)>,
    /// The ids of the page shown, best first (a buffer reused from page to page).
    row: Vec<u32>,
    /// Nothing happens from here on.
    horizon: i64,
}

/// Simulates `user` over the window and appends their events to `out`.
/// Deterministic: depends only on the environment and the user (its own random stream).
pub fn simulate_user(env: &Env<'_>, user: &UserModel, out: &mut Events) {
    Viewer::new(env, user, env.cfg.end()).run_until(i64::MAX, &mut LoggingPolicy, out);
}

/// One user living on: sessions drawn day by day from the user's own random stream, run up
/// to a time and resumed later, with any source of pages. [`simulate_user`] is a viewer run
/// through the window under the logging policy; the closed loop runs viewers a day at a time
/// past the window, shown what devices recommend.
pub struct Viewer<'e, 'a> {
    sim: UserSim<'e, 'a>,
    begin: i64,
    offset: i64,
    next_day: i64,
    last_day: i64,
    /// The planned session starts of the day drawn last, and the next to run.
    starts: Vec<i64>,
    next_start: usize,
    day_open: bool,
    busy_until: i64,
}

impl<'e, 'a> Viewer<'e, 'a> {
    /// `user` before anything happened, living until `horizon` (unix seconds; the window's
    /// end for the logged world, later for a loop). The environment's calendar must cover it.
    pub fn new(env: &'e Env<'a>, user: &'e UserModel, horizon: i64) -> Viewer<'e, 'a> {
        let cfg = env.cfg;
        let mut policy_genres = [0.3f64; N_GENRES];
        for (gi, w) in policy_genres.iter_mut().enumerate() {
            if user.onboarding & (1 << gi) != 0 {
                *w += 2.0;
            }
        }
        let sim = UserSim {
            env,
            user,
            rng: Rng::stream(cfg.seed, world::domain::SESSIONS, user.user_id as u64),
            history: History::new(),
            policy_genres,
            session: 0,
            device: Device::Tv,
            ctx: env.calendar.context(user, cfg.start, 0),
            page: Vec::new(),
            row: Vec::new(),
            horizon,
        };
        let begin = cfg.start.max(user.signup_time);
        let offset = user.utc_offset_minutes as i64 * 60;
        let mut v = Viewer {
            sim,
            begin,
            offset,
            next_day: (begin + offset).div_euclid(DAY),
            last_day: (horizon - 1 + offset).div_euclid(DAY),
            starts: Vec::new(),
            next_start: 0,
            day_open: false,
            busy_until: begin,
        };
        if begin >= horizon {
            v.next_day = v.last_day + 1;
        } else if user.signup_time >= cfg.start {
            // A new user explores right after signing up.
            v.starts.push(user.signup_time + 60);
        }
        v
    }

    /// The user.
    pub fn user(&self) -> &'e UserModel {
        self.sim.user
    }

    /// The device of the user's latest session (a TV before any).
    pub fn device(&self) -> Device {
        self.sim.device
    }

    /// Runs every session that starts before `until` (one still running then finishes),
    /// showing the pages `pages` gives, and appends the events to `out`. Resumable: a later
    /// call carries on where this one stopped, exactly as one call to the later time would.
    pub fn run_until(&mut self, until: i64, pages: &mut dyn Pages, out: &mut Events) {
        let b = self.sim.env.behaviour;
        loop {
            if !self.day_open {
                if self.next_day > self.last_day {
                    return;
                }
                let day = self.next_day;
                self.next_day += 1;
                self.day_open = true;
                let user = self.sim.user;
                let f = self.sim.env.calendar.get(user.country as usize, day);
                let mut rate = user.activity as f64 * b.season_activity[f.season];
                if f.weekday >= 5 {
                    rate *= b.weekend_activity;
                }
                if matches!(f.holiday, Some((_, 0))) {
                    rate *= b.holiday_activity;
                }
                let rng = &mut self.sim.rng;
                let n = rng.poisson(rate);
                let from = self.starts.len();
                for _ in 0..n {
                    let peak = if rng.bernoulli(user.second_share as f64) {
                        user.second_hour
                    } else {
                        user.peak_hour
                    };
                    let hour = rng.gauss(peak as f64, b.hour_spread).rem_euclid(24.0);
                    self.starts
                        .push(day * DAY + (hour * 3_600.0) as i64 - self.offset);
                }
                self.starts[from..].sort_unstable();
            }
            while let Some(&t) = self.starts.get(self.next_start) {
                // Sessions planned before sign-up or the window are dropped; one planned while
                // the previous session runs starts when it ends.
                if t < self.begin {
                    self.next_start += 1;
                    continue;
                }
                let t = t.max(self.busy_until);
                if t >= self.sim.horizon {
                    self.next_start += 1;
                    continue;
                }
                if t >= until {
                    return;
                }
                self.next_start += 1;
                self.busy_until = self.sim.run_session(t, pages, out) + 300;
            }
            self.starts.clear();
            self.next_start = 0;
            self.day_open = false;
        }
    }

    /// The oracle's row at `time` on `device`: the best `k` items by true utility in that
    /// context (see [`PageRequest::oracle`]).
    pub fn oracle_row(&self, time: i64, device: Device, k: usize) -> Vec<u32> {
        let dev = DEVICES.iter().position(|d| *d == device).unwrap_or(0);
        let ctx = self.sim.env.calendar.context(self.sim.user, time, dev);
        self.sim.oracle_row(&ctx, time, k)
    }
}

impl<'a> UserSim<'_, 'a> {
    fn item(&self, id: u32) -> &'a ItemModel {
        &self.env.catalog.items[id as usize]
    }

    fn utility(&self, id: u32) -> f32 {
        self.utility_in(&self.ctx, id)
    }

    fn utility_in(&self, ctx: &Context, id: u32) -> f32 {
        let item = self.item(id);
        truth::utility(
            self.env.preference,
            self.user,
            item,
            ctx,
            self.history.state(id, item),
        )
    }

    /// Whether the user can play item `id` at `t` (it exists, is out, is within their
    /// maturity limit and not finished).
    fn playable(&self, id: u32, t: i64) -> bool {
        self.env.catalog.items.get(id as usize).is_some_and(|item| {
            item.added_time <= t
                && item.maturity <= self.user.maturity_limit
                && !self.history.completed(id)
        })
    }

    /// The best `k` playable items at `t` by utility in `ctx`: each movie, and each series by
    /// the episode the user is due (the first one if they never watched it). Ties by id.
    fn oracle_row(&self, ctx: &Context, t: i64, k: usize) -> Vec<u32> {
        let mut scored: Vec<(f32, u32)> = Vec::new();
        for tm in &self.env.catalog.titles {
            let id = if tm.kind == MediaKind::Movie {
                tm.first_item
            } else {
                let series = self.item(tm.first_item).series;
                let idx = self
                    .history
                    .last_episode(series)
                    .map_or(0, |l| l as u32 + 1);
                if idx >= tm.n_items {
                    continue;
                }
                tm.first_item + idx
            };
            if self.playable(id, t) {
                scored.push((self.utility_in(ctx, id), id));
            }
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.truncate(k);
        scored.into_iter().map(|(_, id)| id).collect()
    }

    fn pick_device(&mut self, local_hour: f64) -> Device {
        let mut w = [0f64; 4];
        for (i, d) in DEVICES.iter().enumerate() {
            let m = match d {
                Device::Tv if (18.0..24.0).contains(&local_hour) => 1.6,
                Device::Mobile if (7.0..18.0).contains(&local_hour) => 1.5,
                Device::Tablet if (7.0..20.0).contains(&local_hour) => 1.2,
                _ => 1.0,
            };
            w[i] = self.user.device_weights[i] as f64 * m;
        }
        DEVICES[self.rng.weighted(&w)]
    }

    /// Runs one session starting at `t`; returns when it ended.
    fn run_session(&mut self, mut t: i64, source: &mut dyn Pages, out: &mut Events) -> i64 {
        let b = self.env.behaviour;
        let local = (t + self.user.utc_offset_minutes as i64 * 60).rem_euclid(DAY) as f64 / 3_600.0;
        self.device = self.pick_device(local);
        let dev = DEVICES.iter().position(|d| *d == self.device).unwrap_or(0);
        self.ctx = self.env.calendar.context(self.user, t, dev);
        let session_id = ((self.user.user_id as u64) << 32) | self.session;
        self.session += 1;
        out.sessions += 1;
        let mut browse = true;
        if self.rng.bernoulli(b.search_share) {
            if let Some(target) = self.search_target(t) {
                let tokens = self.search_tokens(target);
                let search = Search {
                    user_id: self.user.user_id,
                    time: t,
                    session_id,
                    tokens,
                };
                source.searched(&search);
                out.searches.push(search);
                t += 8 + self.rng.below(40) as i64;
                if self.rng.bernoulli(b.search_play) {
                    t = self.play(target, t, session_id, (source, None), out);
                }
            }
            browse = self.rng.bernoulli(b.search_then_browse);
        }
        let mut pages = 0;
        while browse && pages < b.max_pages && t < self.horizon {
            pages += 1;
            let len = b.page_min + self.rng.index(b.page_max.saturating_sub(b.page_min) + 1);
            let (user, device, session) = (self.user, self.device, session_id as u32);
            let offered = {
                let oracle = |k: usize| self.oracle_row(&self.ctx, t, k);
                source.page(&PageRequest {
                    user,
                    time: t,
                    device,
                    session,
                    len,
                    oracle: &oracle,
                })
            };
            let mut row = std::mem::take(&mut self.row);
            match offered {
                Some(offered) => row = offered,
                None => {
                    self.build_page(t, len);
                    row.clear();
                    row.extend(self.page.iter().map(|&(_, id)| id));
                }
            }
            source.shown(user, t, device, session, &row);
            let mut chosen = None;
            for (pos, &id) in row.iter().enumerate() {
                out.impressions.push(Impression {
                    user_id: self.user.user_id,
                    item_id: id,
                    time: t,
                    device: self.device,
                    session_id,
                    position: pos as u16,
                });
                if chosen.is_none()
                    && self.rng.uniform() < truth::examination_probability(self.user, pos) as f64
                {
                    // The logging policy's pages hold only playable items.
                    let p = if self.playable(id, t) {
                        truth::play_probability(self.user, self.utility(id))
                    } else {
                        0.0
                    };
                    if self.rng.uniform() < p as f64 {
                        chosen = Some((pos, id));
                    }
                }
            }
            self.row = row;
            match chosen {
                Some((pos, id)) => {
                    t += 5 + self.rng.below(60) as i64;
                    t = self.play(id, t, session_id, (source, Some(pos)), out);
                    browse = self.rng.bernoulli(b.after_play_browse);
                }
                None => {
                    t += 15 + self.rng.below(90) as i64;
                    browse = self.rng.bernoulli(b.next_page);
                }
            }
        }
        t
    }

    /// Plays `id` from `t` (and autoplays following episodes) while the window lasts; returns
    /// the end time.
    fn play(
        &mut self,
        id: u32,
        mut t: i64,
        session_id: u64,
        (source, position): (&mut dyn Pages, Option<usize>),
        out: &mut Events,
    ) -> i64 {
        let b = self.env.behaviour;
        let mut id = id;
        for n in 0..=b.max_autoplay {
            if t >= self.horizon {
                break; // The window is over: nothing is logged after it.
            }
            let item = self.item(id);
            let duration = item.duration_s;
            let hours = duration as f64 / 3_600.0;
            let z = self.utility(id) as f64 + self.rng.gauss(0.0, b.satisfaction_noise);
            let dev = self.ctx.device.min(3);
            let fraction = if self.rng.bernoulli(sig(b.abandon[0] - b.abandon[1] * z)) {
                self.rng.range_f64(0.002, 0.098)
            } else if self.rng.bernoulli(sig(b.complete[0]
                + b.complete[1] * z
                + b.device_completion[dev]
                - b.device_long_penalty[dev] * (hours - 1.5).max(0.0)))
            {
                if self.rng.bernoulli(0.3) {
                    1.0
                } else {
                    1.0 - 0.19 * self.rng.beta(1.0, 3.0)
                }
            } else {
                0.1 + 0.7 * self.rng.beta(1.3, 1.3)
            };
            let watched = ((fraction * duration as f64).round() as u32).min(duration);
            let fraction = watched as f32 / duration as f32;
            let play = Play {
                user_id: self.user.user_id,
                item_id: id,
                time: t,
                device: self.device,
                session_id,
                watched_s: watched,
                fraction,
            };
            source.played(&play, if n == 0 { position } else { None });
            out.plays.push(play);
            let (kind, genres) = (item.kind, item.genres);
            self.history.record(id, item, fraction);
            for (gi, w) in self.policy_genres.iter_mut().enumerate() {
                if genres & (1 << gi) != 0 {
                    *w += 1.0;
                }
            }
            t += watched as i64 + 10;
            // Autoplay the next episode after a completed one.
            if kind != MediaKind::Episode
                || fraction < truth::COMPLETED_FRACTION
                || n == b.max_autoplay
            {
                break;
            }
            let next = id + 1;
            let Some(next_item) = self.env.catalog.items.get(next as usize) else {
                break;
            };
            if next_item.series != self.item(id).series || next_item.added_time > t {
                break;
            }
            let tv = if self.device == Device::Tv {
                b.tv_autoplay
            } else {
                0.0
            };
            if !self
                .rng
                .bernoulli(sig(b.binge[0] + b.binge[1] * self.user.binge as f64 + tv))
            {
                break;
            }
            id = next;
        }
        t
    }

    /// The item a title stands for: a movie itself, or the episode of a series the user is due
    /// (sometimes a random one). `None` if unavailable, completed or above the user's limit.
    fn resolve(&mut self, title: u32, t: i64) -> Option<u32> {
        let tm: &TitleModel = &self.env.catalog.titles[title as usize];
        if tm.first_added > t || tm.maturity > self.user.maturity_limit {
            return None;
        }
        let id = if tm.kind == MediaKind::Movie {
            tm.first_item
        } else {
            let series = self.item(tm.first_item).series;
            let idx = if self.rng.bernoulli(self.env.behaviour.series_substitute) {
                self.history
                    .last_episode(series)
                    .map_or(0, |l| l as u32 + 1)
            } else {
                self.rng.below(tm.n_items as u64) as u32
            };
            if idx >= tm.n_items {
                return None;
            }
            tm.first_item + idx
        };
        let item = self.item(id);
        (item.added_time <= t && !self.history.completed(id)).then_some(id)
    }

    fn level(&self) -> usize {
        self.user.maturity_limit.rank() as usize
    }

    fn sample_title(&mut self, source: usize, t: i64) -> Option<u32> {
        let p = self.env.policy;
        let level = self.level();
        match source {
            0 => p.popular[level]
                .as_ref()
                .map(|pool| pool.sample(&mut self.rng)),
            1 => {
                let gi = self.rng.weighted(&self.policy_genres);
                p.genre[gi][level]
                    .as_ref()
                    .or(p.popular[level].as_ref())
                    .map(|pool| pool.sample(&mut self.rng))
            }
            2 => {
                let since = t - (self.env.behaviour.new_arrival_days * DAY as f64) as i64;
                let lo = p.by_added.partition_point(|x| x.0 < since);
                let hi = p.by_added.partition_point(|x| x.0 <= t);
                (hi > lo).then(|| p.by_added[lo + self.rng.index(hi - lo)].1)
            }
            _ => Some(self.rng.below(self.env.catalog.titles.len() as u64) as u32),
        }
    }

    /// Fills `self.page` with the logging policy's row at time `t`, best first.
    fn build_page(&mut self, t: i64, len: usize) {
        let b = self.env.behaviour;
        self.page.clear();
        // "Continue watching": the next episode of the series watched most recently.
        if self.rng.bernoulli(b.continue_watching)
            && let Some(&(series, last)) = self.history.series_progress().last()
            && let Some(id) = self.next_episode(series, last, t)
        {
            self.page.push((f64::INFINITY, id));
        }
        let total: f64 = self.policy_genres.iter().sum();
        let mut attempts = 0;
        while self.page.len() < len && attempts < 3 * len {
            attempts += 1;
            let source = self.rng.weighted(&b.policy_mix);
            let Some(title) = self.sample_title(source, t) else {
                continue;
            };
            let Some(id) = self.resolve(title, t) else {
                continue;
            };
            if self.page.iter().any(|&(_, x)| x == id) {
                continue;
            }
            let item = self.item(id);
            let mut personal = 0.0;
            let mut bits = item.genres;
            while bits != 0 {
                let gi = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                personal += self.policy_genres[gi] / total;
            }
            // Uniform noise of standard deviation `policy_noise` (cheaper than a Gumbel draw).
            let noise = (self.rng.uniform() - 0.5) * 12f64.sqrt();
            let score = 0.5 * item.popularity as f64 + 2.0 * personal + b.policy_noise * noise;
            self.page.push((score, id));
        }
        // Best first; ties (equal scores) keep sampling order.
        self.page.sort_by(|a, b| b.0.total_cmp(&a.0));
    }

    /// The episode after episode index `last` of `series`, if it exists, is out by `t` and
    /// the user may see it.
    fn next_episode(&self, series: u32, last: u16, t: i64) -> Option<u32> {
        // Episodes of a series are consecutive ids from the series' first item.
        let first = self.series_first_item(series)?;
        let id = first + last as u32 + 1;
        let item = self.env.catalog.items.get(id as usize)?;
        (item.series == series
            && item.added_time <= t
            && item.maturity <= self.user.maturity_limit
            && !self.history.completed(id))
        .then_some(id)
    }

    fn series_first_item(&self, series: u32) -> Option<u32> {
        self.env
            .catalog
            .series_first_item
            .get(series as usize)
            .copied()
    }

    /// What the user looks for: the best of a few candidates they know of, by true utility
    /// plus noise.
    fn search_target(&mut self, t: i64) -> Option<u32> {
        let b = self.env.behaviour;
        let p = self.env.policy;
        let level = self.level();
        // The user knows their own tastes: genres by softmax of true affinity.
        let w: Vec<f64> = self
            .user
            .genre_affinity
            .iter()
            .map(|a| (2.0 * *a as f64).exp())
            .collect();
        let mut best: Option<(f64, u32)> = None;
        for k in 0..b.search_candidates {
            let pool = if k % 2 == 0 {
                let gi = self.rng.weighted(&w);
                p.genre[gi][level].as_ref()
            } else {
                p.popular[level].as_ref()
            };
            let Some(title) = pool.map(|pool| pool.sample(&mut self.rng)) else {
                continue;
            };
            let Some(id) = self.resolve(title, t) else {
                continue;
            };
            let score = self.utility(id) as f64 + self.rng.gumbel();
            if best.is_none_or(|(s, _)| score > s) {
                best = Some((score, id));
            }
        }
        best.map(|(_, id)| id)
    }

    /// Query tokens for `target`: title words, an actor's name, its genre, or (rarely) noise.
    fn search_tokens(&mut self, target: u32) -> Vec<String> {
        let item = self.item(target).clone();
        let mut tokens = Vec::new();
        match self.rng.weighted(&[0.55, 0.2, 0.15, 0.1]) {
            0 => {
                let words: Vec<&str> = item.title_words().collect();
                let n = 1 + self.rng.index(words.len().min(2));
                let start = self.rng.index(words.len() + 1 - n);
                tokens.extend(words[start..start + n].iter().map(|w| w.to_string()));
            }
            1 => {
                let cast: Vec<u32> = item.actor_ids().take(3).collect();
                if !cast.is_empty() {
                    let name = world::person_name(cast[self.rng.index(cast.len())]);
                    let parts: Vec<String> = world::name_tokens(&name).collect();
                    if self.rng.bernoulli(0.5) {
                        tokens.extend(parts.last().cloned());
                    } else {
                        tokens.extend(parts);
                    }
                }
            }
            2 => {
                let gs: Vec<usize> = (0..N_GENRES).filter(|&gi| item.has_genre(gi)).collect();
                if !gs.is_empty() {
                    tokens.push(GENRES[gs[self.rng.index(gs.len())]].to_lowercase());
                }
            }
            _ => tokens.push(world::random_word(&mut self.rng).to_string()),
        }
        if tokens.is_empty() {
            tokens.push(world::random_word(&mut self.rng).to_string());
        }
        tokens
    }
}

#[inline]
fn sig(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::truth::Coefficients;
    use crate::world::Vocab;

    struct World {
        cfg: WorldConfig,
        catalog: Catalog,
        policy: Policy,
        preference: Preference,
        behaviour: Behaviour,
        calendar: CalendarCache,
        users: Vec<UserModel>,
    }

    /// A small world whose calendar runs `extra_days` past its window.
    fn world(extra_days: i64) -> World {
        let cfg = WorldConfig {
            users: 40,
            items: 150,
            days: 6,
            seed: 9,
            start: 1_761_955_200,
        };
        let vocab = Vocab::new(&cfg);
        let preference = Preference::new(Coefficients::default()).unwrap();
        let catalog = Catalog::generate(&cfg, &vocab, |_, _| Ok(())).unwrap();
        let calendar = CalendarCache::new(
            cfg.start,
            cfg.end() + extra_days * DAY,
            vocab.holidays.clone(),
            preference.coef.holiday_window_days,
        );
        World {
            policy: Policy::new(&catalog),
            users: (0..cfg.users)
                .map(|id| world::generate_user(&cfg, &vocab, id).model)
                .collect(),
            cfg,
            catalog,
            preference,
            behaviour: Behaviour::default(),
            calendar,
        }
    }

    fn env(w: &World) -> Env<'_> {
        Env {
            cfg: &w.cfg,
            catalog: &w.catalog,
            policy: &w.policy,
            preference: &w.preference,
            behaviour: &w.behaviour,
            calendar: &w.calendar,
        }
    }

    fn same(a: &Events, b: &Events) -> bool {
        a.impressions == b.impressions
            && a.plays == b.plays
            && a.searches == b.searches
            && a.sessions == b.sessions
    }

    #[test]
    fn a_viewer_resumed_at_any_times_lives_the_same_life() {
        let w = world(3);
        let env = env(&w);
        let horizon = w.cfg.end() + 3 * DAY;
        for user in &w.users {
            let mut once = Events::default();
            Viewer::new(&env, user, horizon).run_until(i64::MAX, &mut LoggingPolicy, &mut once);
            let mut pieces = Events::default();
            let mut v = Viewer::new(&env, user, horizon);
            for k in 1..=20 {
                // Cuts at odd times: mid-day, mid-session.
                v.run_until(w.cfg.start + k * 37_313, &mut LoggingPolicy, &mut pieces);
            }
            v.run_until(i64::MAX, &mut LoggingPolicy, &mut pieces);
            assert!(same(&once, &pieces), "user {}", user.user_id);
        }
        // And simulate_user is a viewer over the window.
        let mut a = Events::default();
        simulate_user(&env, &w.users[3], &mut a);
        let mut b = Events::default();
        Viewer::new(&env, &w.users[3], w.cfg.end()).run_until(i64::MAX, &mut LoggingPolicy, &mut b);
        assert!(same(&a, &b));
        assert!(a.sessions > 0);
    }

    /// Shows a fixed row (or the oracle's) and records what it is told.
    struct Fixed {
        row: Option<Vec<u32>>,
        shown: Vec<Vec<u32>>,
        from_row: Vec<(u32, usize)>,
        elsewhere: usize,
    }

    impl Pages for Fixed {
        fn page(&mut self, r: &PageRequest<'_>) -> Option<Vec<u32>> {
            Some(self.row.clone().unwrap_or_else(|| (r.oracle)(10)))
        }
        fn shown(&mut self, _: &UserModel, _: i64, _: Device, _: u32, row: &[u32]) {
            self.shown.push(row.to_vec());
        }
        fn played(&mut self, play: &Play, position: Option<usize>) {
            match position {
                Some(p) => self.from_row.push((play.item_id, p)),
                None => self.elsewhere += 1,
            }
        }
    }

    #[test]
    fn rows_of_unplayable_items_are_seen_and_never_played() {
        let w = world(0);
        let env = env(&w);
        let mut pages = Fixed {
            row: Some(vec![u32::MAX, 10_000, u32::MAX - 1]),
            shown: Vec::new(),
            from_row: Vec::new(),
            elsewhere: 0,
        };
        let mut out = Events::default();
        for user in &w.users {
            Viewer::new(&env, user, w.cfg.end()).run_until(i64::MAX, &mut pages, &mut out);
        }
        assert!(!pages.shown.is_empty());
        assert!(pages.shown.iter().all(|r| r.len() == 3));
        assert_eq!(out.impressions.len(), 3 * pages.shown.len());
        assert!(pages.from_row.is_empty(), "{:?}", pages.from_row);
        // Plays from searches (and their autoplay) still happen, and are told.
        assert_eq!(out.plays.len(), pages.elsewhere);
    }

    #[test]
    fn the_oracles_rows_are_playable_and_played_from_more_than_the_policys() {
        let w = world(0);
        let env = env(&w);
        let mut oracle = Fixed {
            row: None,
            shown: Vec::new(),
            from_row: Vec::new(),
            elsewhere: 0,
        };
        let mut out = Events::default();
        for user in &w.users {
            Viewer::new(&env, user, w.cfg.end()).run_until(i64::MAX, &mut oracle, &mut out);
        }
        assert!(oracle.shown.iter().all(|r| !r.is_empty() && r.len() <= 10));
        for &(item, pos) in &oracle.from_row {
            assert!((item as usize) < w.catalog.items.len() && pos < 10);
        }
        let mut logged = Events::default();
        for user in &w.users {
            simulate_user(&env, user, &mut logged);
        }
        // Plays per impression: the oracle's rows are the ceiling.
        let rate = |plays: usize, e: &Events| plays as f64 / e.impressions.len().max(1) as f64;
        let logged_from_rows = logged.plays.len(); // an upper bound of the policy's
        assert!(
            rate(oracle.from_row.len(), &out) > rate(logged_from_rows, &logged),
            "oracle {} plays from {} impressions, policy at most {} from {}",
            oracle.from_row.len(),
            out.impressions.len(),
            logged_from_rows,
            logged.impressions.len()
        );
    }
}
