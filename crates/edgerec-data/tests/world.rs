//! End-to-end properties of a small simulated world: determinism, and that every behaviour the
//! training-data rules depend on is present in the logs (and agrees with the ground truth).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use edgerec::context::Device;
use edgerec_data::schema::{self, Impression, Item, MediaKind, Play, Search, User};
use edgerec_data::sim::{self, SimOptions};
use edgerec_data::truth::Truth;
use edgerec_data::world::{self, WorldConfig};

const CFG: WorldConfig = WorldConfig {
    users: 3_000,
    items: 3_000,
    days: 21,
    seed: 2024,
    start: world::DEFAULT_START,
};

/// The logs of one world, generated once for every test of this binary.
struct Logs {
    dir: PathBuf,
    users: Vec<User>,
    items: Vec<Item>,
    impressions: Vec<Impression>,
    plays: Vec<Play>,
    searches: Vec<Search>,
}

fn logs() -> &'static Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        // A fixed place under the target directory: replaced on every run, never piles up.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("edgerec-data-world");
        let summary = sim::simulate(&CFG, &dir, &SimOptions::default()).unwrap();
        eprintln!("{summary}");
        Logs {
            users: schema::read_table(&dir).unwrap(),
            items: schema::read_table(&dir).unwrap(),
            impressions: schema::read_table(&dir).unwrap(),
            plays: schema::read_table(&dir).unwrap(),
            searches: schema::read_table(&dir).unwrap(),
            dir,
        }
    })
}

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn same_seed_same_bytes_whatever_the_chunking() {
    let cfg = WorldConfig {
        users: 700,
        items: 800,
        days: 10,
        ..CFG
    };
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let small_parts = SimOptions {
        chunk_users: 100,
        writer: schema::WriterOptions {
            rows_per_group: 5_000,
            groups_per_file: 2,
        },
        ..SimOptions::default()
    };
    sim::simulate(&cfg, a.path(), &small_parts).unwrap();
    let one_chunk = SimOptions {
        chunk_users: 1_000_000,
        ..small_parts
    };
    sim::simulate(&cfg, b.path(), &one_chunk).unwrap();
    let fa = files(a.path());
    assert!(
        fa.len() > 8,
        "{:?}",
        fa.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert!(fa == files(b.path()), "chunk size changed the output");
    // A single rayon thread gives the same bytes too.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| sim::simulate(&cfg, c.path(), &small_parts).unwrap());
    assert!(fa == files(c.path()), "thread count changed the output");
    // Another seed gives another world.
    let other = WorldConfig { seed: 2025, ..cfg };
    sim::simulate(&other, c.path(), &small_parts).unwrap();
    let fc = files(c.path());
    let plays = |f: &[(PathBuf, Vec<u8>)]| {
        f.iter()
            .filter(|(p, _)| p.starts_with("plays"))
            .map(|x| x.1.clone())
            .collect::<Vec<_>>()
    };
    assert_ne!(plays(&fa), plays(&fc));
    assert_eq!(sim::verify(c.path()).unwrap().users, 700);
}

#[test]
fn watch_fractions_spread_over_all_bands() {
    let l = logs();
    let n = l.plays.len() as f64;
    assert!(n > 10_000.0, "{n}");
    let share = |lo: f32, hi: f32| {
        l.plays
            .iter()
            .filter(|p| p.fraction >= lo && p.fraction < hi)
            .count() as f64
            / n
    };
    let (early, partial, complete) = (share(0.0, 0.1), share(0.1, 0.8), share(0.8, 1.1));
    eprintln!("fractions: <10% {early:.3}, 10-80% {partial:.3}, >=80% {complete:.3}");
    for s in [early, partial, complete] {
        assert!(s > 0.1, "{early} {partial} {complete}");
    }
    for p in &l.plays {
        let d = l.items[p.item_id as usize].duration_s;
        assert!(p.watched_s <= d && (p.fraction - p.watched_s as f32 / d as f32).abs() < 1e-6);
    }
}

#[test]
fn play_rate_falls_with_position() {
    let l = logs();
    let played: HashSet<(u64, u32)> = l.plays.iter().map(|p| (p.session_id, p.item_id)).collect();
    let mut shown = [0u64; 4];
    let mut hits = [0u64; 4];
    for i in &l.impressions {
        let bucket = match i.position {
            0..=1 => 0,
            2..=5 => 1,
            6..=11 => 2,
            _ => 3,
        };
        shown[bucket] += 1;
        hits[bucket] += played.contains(&(i.session_id, i.item_id)) as u64;
    }
    let rate: Vec<f64> = (0..4).map(|b| hits[b] as f64 / shown[b] as f64).collect();
    eprintln!("play rate by position bucket: {rate:?}");
    assert!(rate.windows(2).all(|w| w[0] > w[1]), "{rate:?}");
    assert!(rate[0] > 3.0 * rate[3], "{rate:?}");
}

#[test]
fn cold_items_and_cold_users_exist_and_are_used() {
    let l = logs();
    let (start, end) = (CFG.start, CFG.end());
    let cold_items: HashSet<u32> = l
        .items
        .iter()
        .filter(|i| i.added_time >= start && i.added_time < end)
        .map(|i| i.item_id)
        .collect();
    let cold_users: HashSet<u32> = l
        .users
        .iter()
        .filter(|u| u.signup_time >= start && u.signup_time < end)
        .map(|u| u.user_id)
        .collect();
    assert!(cold_items.len() > 50 && cold_users.len() > 100);
    let played_cold = l
        .plays
        .iter()
        .filter(|p| cold_items.contains(&p.item_id))
        .count();
    let cold_players: HashSet<u32> = l
        .plays
        .iter()
        .filter(|p| cold_users.contains(&p.user_id))
        .map(|p| p.user_id)
        .collect();
    assert!(played_cold > 100, "{played_cold}");
    assert!(
        cold_players.len() > cold_users.len() / 3,
        "{}",
        cold_players.len()
    );
    // Nothing happens before an item is added or a user signs up.
    for p in &l.plays {
        assert!(l.items[p.item_id as usize].added_time <= p.time);
        assert!(l.users[p.user_id as usize].signup_time <= p.time);
        assert!((start..end).contains(&p.time));
    }
}

#[test]
fn restricted_profiles_never_see_titles_above_their_limit() {
    let l = logs();
    let limit = |u: u32| schema::maturity_limit(l.users[u as usize].age);
    let kids = l.users.iter().filter(|u| u.age < 13).count();
    assert!(kids > 100, "{kids}");
    let mut kid_events = 0;
    for (user, item) in l
        .impressions
        .iter()
        .map(|i| (i.user_id, i.item_id))
        .chain(l.plays.iter().map(|p| (p.user_id, p.item_id)))
    {
        let m = l.items[item as usize].maturity;
        assert!(
            m <= limit(user),
            "user {user} saw item {item} rated {}",
            m.as_str()
        );
        kid_events += (l.users[user as usize].age < 13) as u32;
    }
    assert!(kid_events > 1_000, "{kid_events}");
}

fn item_tokens(item: &Item) -> HashSet<String> {
    let mut t: HashSet<String> = item.title.split(' ').map(|w| w.to_lowercase()).collect();
    t.extend(item.genres.iter().map(|g| g.to_lowercase()));
    for a in &item.actors {
        t.extend(world::name_tokens(a));
    }
    t
}

#[test]
fn search_tokens_match_what_is_watched_next() {
    let l = logs();
    let mut next_play: HashMap<u64, &Play> = HashMap::new();
    for p in &l.plays {
        next_play.entry(p.session_id).or_insert(p);
    }
    let (mut n, mut hit, mut chance) = (0u32, 0u32, 0u32);
    for (k, s) in l.searches.iter().enumerate() {
        let Some(p) = next_play.get(&s.session_id).filter(|p| p.time >= s.time) else {
            continue;
        };
        let overlaps = |item: &Item| {
            let t = item_tokens(item);
            s.tokens.iter().any(|x| t.contains(x))
        };
        n += 1;
        hit += overlaps(&l.items[p.item_id as usize]) as u32;
        let random = &l.items[(k * 7_919 + 13) % l.items.len()];
        chance += overlaps(random) as u32;
    }
    eprintln!("searches followed by a play: {n}, token overlap {hit}, with a random item {chance}");
    assert!(n > 300, "{n}");
    assert!(hit as f64 > 0.75 * n as f64, "{hit} of {n}");
    assert!(hit > 4 * chance, "{hit} vs chance {chance}");
}

#[test]
fn episodes_are_mostly_watched_in_order() {
    let l = logs();
    let mut last: HashMap<(u32, u32), (u16, u16)> = HashMap::new();
    let (mut in_order, mut total) = (0u32, 0u32);
    for p in &l.plays {
        let it = &l.items[p.item_id as usize];
        if it.kind != MediaKind::Episode {
            continue;
        }
        let key = (p.user_id, it.series_id.unwrap());
        let here = (it.season.unwrap(), it.episode.unwrap());
        if let Some(prev) = last.insert(key, here) {
            total += 1;
            // Next episode of the season, first of the next season, or a resume of the same.
            let next = here == prev
                || here == (prev.0, prev.1 + 1)
                || (here.0 == prev.0 + 1 && here.1 == 1);
            in_order += next as u32;
        }
    }
    eprintln!("episode transitions: {in_order} in order of {total}");
    assert!(total > 500, "{total}");
    assert!(
        in_order as f64 > 0.75 * total as f64,
        "{in_order} of {total}"
    );
}

#[test]
fn tv_sessions_watch_longer_than_mobile() {
    let l = logs();
    let mean = |d: Device| {
        let v: Vec<f64> = l
            .plays
            .iter()
            .filter(|p| p.device == d)
            .map(|p| p.watched_s as f64)
            .collect();
        (v.iter().sum::<f64>() / v.len() as f64, v.len())
    };
    let (tv, n_tv) = mean(Device::Tv);
    let (mobile, n_mobile) = mean(Device::Mobile);
    eprintln!("mean watched_s: tv {tv:.0} ({n_tv} plays), mobile {mobile:.0} ({n_mobile} plays)");
    assert!(n_tv > 1_000 && n_mobile > 1_000);
    assert!(tv > 1.3 * mobile, "tv {tv} mobile {mobile}");
}

#[test]
fn truth_utility_ranks_completed_items_above_random_ones() {
    let l = logs();
    let truth = Truth::load(&l.dir).unwrap();
    assert_eq!(truth.users.len(), l.users.len());
    let (mut wins, mut pairs) = (0f64, 0u32);
    for (k, p) in l
        .plays
        .iter()
        .enumerate()
        .filter(|(_, p)| p.fraction >= 0.8)
    {
        let ctx = truth.context(p.user_id, p.time, p.device);
        let limit = truth.users[p.user_id as usize].maturity_limit;
        // A random item the user may see.
        let mut j = (k * 104_729 + 7) % l.items.len();
        while l.items[j].maturity > limit {
            j = (j + 1) % l.items.len();
        }
        let a = truth.utility(p.user_id, p.item_id, &ctx);
        let b = truth.utility(p.user_id, j as u32, &ctx);
        wins += if a > b {
            1.0
        } else if a == b {
            0.5
        } else {
            0.0
        };
        pairs += 1;
    }
    let auc = wins / pairs as f64;
    eprintln!("truth AUC completed vs random: {auc:.3} over {pairs} pairs");
    assert!(pairs > 5_000 && auc > 0.7, "{auc}");
}

#[test]
fn loaded_truth_matches_the_simulator_exactly() {
    let l = logs();
    let truth = Truth::load(&l.dir).unwrap();
    let vocab = world::Vocab::new(&CFG);
    let catalog = world::Catalog::generate(&CFG, &vocab, |_, _| Ok(())).unwrap();
    let pref = edgerec_data::truth::Preference::new(Default::default()).unwrap();
    let history = edgerec_data::truth::History::new();
    for u in (0..CFG.users).step_by(97) {
        let model = world::generate_user(&CFG, &vocab, u).model;
        for i in (0..CFG.items).step_by(31) {
            let ctx = truth.context(
                u,
                CFG.start + 3 * 86_400 + 3_600 * (i as i64 % 24),
                Device::Tablet,
            );
            let item = &catalog.items[i as usize];
            let sim =
                edgerec_data::truth::utility(&pref, &model, item, &ctx, history.state(i, item));
            assert_eq!(
                sim.to_bits(),
                truth.utility(u, i, &ctx).to_bits(),
                "user {u} item {i}"
            );
        }
    }
}

#[test]
fn holiday_titles_gain_in_the_weeks_before_the_holiday() {
    // Eight weeks from 1 November: Christmas titles gain from early December on.
    let cfg = WorldConfig {
        users: 2_000,
        items: 2_000,
        days: 56,
        seed: 5,
        start: world::DEFAULT_START,
    };
    let dir = tempfile::tempdir().unwrap();
    sim::simulate(&cfg, dir.path(), &SimOptions::default()).unwrap();
    let items: Vec<Item> = schema::read_table(dir.path()).unwrap();
    let plays: Vec<Play> = schema::read_table(dir.path()).unwrap();
    let christmas: HashSet<u32> = items
        .iter()
        .filter(|i| i.tags.iter().any(|t| t == "christmas"))
        .map(|i| i.item_id)
        .collect();
    assert!(christmas.len() > 10, "{}", christmas.len());
    let share = |from_day: i64, to_day: i64| {
        let window: Vec<&Play> = plays
            .iter()
            .filter(|p| {
                (p.time - cfg.start) / 86_400 >= from_day && (p.time - cfg.start) / 86_400 < to_day
            })
            .collect();
        window
            .iter()
            .filter(|p| christmas.contains(&p.item_id))
            .count() as f64
            / window.len() as f64
    };
    // 1–21 November (more than 21 days ahead) against 11–24 December.
    let (before, run_up) = (share(0, 21), share(40, 54));
    eprintln!("christmas-tagged share of plays: November {before:.4}, run-up {run_up:.4}");
    assert!(run_up > 1.4 * before, "{before} {run_up}");
}
