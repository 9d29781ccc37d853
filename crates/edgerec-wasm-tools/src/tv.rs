//! A host for the plain-ABI module (`crates/edgerec-tv`, `dist/tv/edgerec_tv.wasm`) in wasmi,
//! an interpreter that runs where JIT compilers cannot (TVs, set-top boxes), built without its
//! SIMD support: what a native TV shell does, in Rust. [`Tv`] refuses a module that imports
//! anything or uses SIMD, caps its memory, and speaks the ABI the module's header describes:
//! buffers by handle, negative error codes with `edgerec_last_error`'s JSON.
//!
//! [`parity`] replays a parity fixture of the native CLI (`requests.jsonl`, `recs.tsv`) through
//! it: the same rows as the native core, or an error saying which user differs.

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use wasmi::{Engine, Instance, Linker, Memory, Module, Store, StoreLimits, StoreLimitsBuilder};

use crate::{baseline_features, validate};

/// The ABI version this host speaks (the module's `edgerec_abi_version`).
pub const ABI_VERSION: u32 = 1;

/// The plain-ABI module, instantiated.
pub struct Tv {
    store: Store<StoreLimits>,
    instance: Instance,
    memory: Memory,
}

impl Tv {
    /// Validates `module` without SIMD, refuses it if it imports anything, and instantiates it
    /// with its linear memory capped at `memory_limit` bytes.
    pub fn new(module: &[u8], memory_limit: usize) -> Result<Tv> {
        validate(module, baseline_features()).context("the module is not valid without SIMD")?;
        let engine = Engine::default();
        let module = Module::new(&engine, module).context("wasmi could not compile the module")?;
        let imports: Vec<String> = module
            .imports()
            .map(|i| format!("{}.{}", i.module(), i.name()))
            .collect();
        ensure!(
            imports.is_empty(),
            "the plain-ABI module must import nothing, it imports {imports:?}"
        );
        let limits = StoreLimitsBuilder::new().memory_size(memory_limit).build();
        let mut store = Store::new(&engine, limits);
        store.limiter(|limits| limits);
        let instance = Linker::<StoreLimits>::new(&engine)
            .instantiate_and_start(&mut store, &module)
            .context("instantiating the module")?;
        let memory = instance
            .get_memory(&store, "memory")
            .context("the module exports no memory")?;
        let mut tv = Tv {
            store,
            instance,
            memory,
        };
        let version: u32 = tv.call("edgerec_abi_version", ())?;
        ensure!(
            version == ABI_VERSION,
            "the module speaks ABI {version}, this host {ABI_VERSION}"
        );
        Ok(tv)
    }

    fn call<P: wasmi::WasmParams, R: wasmi::WasmResults>(
        &mut self,
        name: &str,
        params: P,
    ) -> Result<R> {
        let f = self
            .instance
            .get_typed_func::<P, R>(&self.store, name)
            .with_context(|| format!("the module has no export {name} of the expected type"))?;
        f.call(&mut self.store, params)
            .with_context(|| format!("{name} trapped"))
    }

    /// A call returning a handle or an error code: the handle, or the module's error.
    fn checked(&mut self, name: &str, code: i32) -> Result<i32> {
        if code >= 0 {
            return Ok(code);
        }
        let error = self.call::<(), i32>("edgerec_last_error", ())?;
        let message = if error > 0 {
            String::from_utf8_lossy(&self.take(error)?).into_owned()
        } else {
            "(no last error)".into()
        };
        bail!("{name} failed with {code}: {message}")
    }

    /// Copies `bytes` into a new module buffer; returns its handle.
    pub fn buffer(&mut self, bytes: &[u8]) -> Result<i32> {
        let len = u32::try_from(bytes.len()).context("buffer past 4 GiB")?;
        let code = self.call("edgerec_buffer_new", len)?;
        let handle = self.checked("edgerec_buffer_new", code)?;
        let ptr: u32 = self.call("edgerec_buffer_ptr", handle)?;
        ensure!(
            ptr != 0 || bytes.is_empty(),
            "buffer {handle} has no address"
        );
        self.memory
            .write(&mut self.store, ptr as usize, bytes)
            .context("writing into the module's memory")?;
        Ok(handle)
    }

    /// A buffer's bytes; frees the buffer.
    pub fn take(&mut self, handle: i32) -> Result<Vec<u8>> {
        let len = self.call("edgerec_buffer_len", handle)?;
        let len = self.checked("edgerec_buffer_len", len)? as usize;
        let ptr: u32 = self.call("edgerec_buffer_ptr", handle)?;
        let mut out = vec![0; len];
        self.memory
            .read(&self.store, ptr as usize, &mut out)
            .context("reading the module's memory")?;
        self.free(handle)?;
        Ok(out)
    }

    /// Frees a handle.
    pub fn free(&mut self, handle: i32) -> Result<()> {
        let code = self.call("edgerec_free", handle)?;
        self.checked("edgerec_free", code).map(|_| ())
    }

    /// Loads a bundle (0: the default memory budget); returns the recommender's handle.
    pub fn load(&mut self, bundle: &[u8], memory_budget: u64) -> Result<i32> {
        let buffer = self.buffer(bundle)?;
        let code = self.call("edgerec_recommender_load", (buffer, memory_budget))?;
        // The error first: a successful free clears it.
        let result = self.checked("edgerec_recommender_load", code);
        self.free(buffer)?;
        result
    }

    /// A user state from its exported bytes; returns its handle.
    pub fn state(&mut self, bytes: &[u8]) -> Result<i32> {
        let buffer = self.buffer(bytes)?;
        let code = self.call("edgerec_state_import", buffer)?;
        let result = self.checked("edgerec_state_import", code);
        self.free(buffer)?;
        result
    }

    /// A row for `options` (the JSON of the package's RowOptions), as the module's JSON.
    pub fn recommend_row(
        &mut self,
        recommender: i32,
        state: i32,
        options: &str,
    ) -> Result<serde_json::Value> {
        let buffer = self.buffer(options.as_bytes())?;
        let code = self.call("edgerec_recommend_row", (recommender, state, buffer))?;
        let result = self.checked("edgerec_recommend_row", code);
        self.free(buffer)?;
        let row = result?;
        let bytes = self.take(row)?;
        serde_json::from_slice(&bytes).context("the row is not JSON")
    }

    /// The module's linear memory in bytes: its high-water mark, since wasm memory only grows.
    pub fn memory_bytes(&self) -> usize {
        self.memory.data_size(&self.store)
    }
}

/// What [`parity`] found.
#[derive(Debug)]
pub struct Parity {
    /// Requests replayed (each row equal to the native one).
    pub requests: usize,
    /// Of them, rows the ranker ordered.
    pub ranked: usize,
    /// The module's memory after loading the bundle.
    pub memory_after_load: usize,
    /// The module's memory after every row (its high-water mark).
    pub memory_high_water: usize,
}

/// Replays the parity fixture in `dir` (`bundle.edgerec`, `requests.jsonl`, `recs.tsv`, as
/// `edgerec recommend --requests-out` writes them) through the module: every row must have the
/// native titles in order with the same reasons, scores within 1e-5.
pub fn parity(module: &[u8], dir: &Path, memory_limit: usize) -> Result<Parity> {
    let read = |name: &str| {
        std::fs::read(dir.join(name))
            .with_context(|| format!("reading {}", dir.join(name).display()))
    };
    let bundle = read("bundle.edgerec")?;
    let requests = String::from_utf8(read("requests.jsonl")?).context("requests.jsonl")?;
    let recs = String::from_utf8(read("recs.tsv")?).context("recs.tsv")?;
    let expected = native_rows(&recs)?;

    let mut tv = Tv::new(module, memory_limit)?;
    let rec = tv.load(&bundle, 0)?;
    let memory_after_load = tv.memory_bytes();
    let mut replayed = 0;
    let mut ranked = 0;
    for (line_no, line) in requests
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let at = || format!("requests.jsonl:{}", line_no + 1);
        let request: serde_json::Value = serde_json::from_str(line).with_context(at)?;
        let user = request["userId"]
            .as_u64()
            .with_context(|| format!("{}: no userId", at()))?;
        let state_hex = request["state"]
            .as_str()
            .with_context(|| format!("{}: no state", at()))?;
        let state = tv.state(&hex(state_hex).with_context(at)?)?;
        let row = tv
            .recommend_row(rec, state, &request["options"].to_string())
            .with_context(|| format!("user {user}"))?;
        tv.free(state)?;
        let want = expected
            .iter()
            .find(|(u, _)| *u == user)
            .map(|(_, rows)| rows)
            .with_context(|| format!("recs.tsv has no row for user {user}"))?;
        let items = row["items"].as_array().context("the row has no items")?;
        let got: Vec<(u64, String, f64)> = items
            .iter()
            .map(|i| {
                (
                    i["itemId"].as_u64().unwrap_or(u64::MAX),
                    i["reason"].as_str().unwrap_or_default().to_string(),
                    i["score"].as_f64().unwrap_or(f64::NAN),
                )
            })
            .collect();
        let same = got.len() == want.len()
            && got
                .iter()
                .zip(want)
                .all(|(g, w)| g.0 == w.0 && g.1 == w.1 && (g.2 - w.2).abs() <= 1e-5);
        ensure!(
            same,
            "user {user}: the module's row differs from the native one:\n  native {want:?}\n  module {got:?}"
        );
        ranked += usize::from(row["ranked"].as_bool() == Some(true));
        replayed += 1;
    }
    ensure!(
        replayed > 0,
        "{} holds no requests",
        dir.join("requests.jsonl").display()
    );
    ensure!(
        replayed == expected.len(),
        "recs.tsv has rows for {} users, requests.jsonl {replayed}",
        expected.len()
    );
    Ok(Parity {
        requests: replayed,
        ranked,
        memory_after_load,
        memory_high_water: tv.memory_bytes(),
    })
}

/// Hostile input through the module, which must answer each with its error code and stay
/// usable (a trap would lose the instance): a truncated bundle, a bundle over a small memory
/// budget, corrupt state bytes, and a buffer larger than the runtime's memory limit (wasm's
/// `memory.grow` fails; the module reports `out_of_memory`). Then a row still comes.
pub fn refusals(module: &[u8], bundle: &[u8], memory_limit: usize) -> Result<()> {
    let mut tv = Tv::new(module, memory_limit)?;
    let expect = |r: Result<i32>, code: &str| -> Result<()> {
        match r {
            Ok(h) => bail!("expected {code}, got handle {h}"),
            Err(e) if format!("{e:#}").contains(&format!("\"code\":\"{code}\"")) => Ok(()),
            Err(e) => bail!("expected {code}, got: {e:#}"),
        }
    };
    expect(tv.load(&bundle[..bundle.len() / 2], 0), "truncated")?;
    expect(tv.load(bundle, 1 << 20), "over_budget")?;
    expect(tv.state(b"not a state"), "corrupt_state")?;
    let too_big = u32::try_from(memory_limit).unwrap_or(u32::MAX).min(1 << 30);
    let code = tv.call::<u32, i32>("edgerec_buffer_new", too_big)?;
    expect(tv.checked("edgerec_buffer_new", code), "out_of_memory")?;
    let rec = tv.load(bundle, 0)?;
    let state = tv.call::<(), i32>("edgerec_state_new", ())?;
    let row = tv.recommend_row(
        rec,
        state,
        r#"{"context":{"device":"tv","timestamp":1764446400},"k":5}"#,
    )?;
    ensure!(
        row["items"].as_array().map(Vec::len) == Some(5),
        "no row of 5 after the refusals: {row}"
    );
    Ok(())
}

type NativeRow = Vec<(u64, String, f64)>;

/// recs.tsv's rows by user: `user_id rank item_id placed_by score reason`.
fn native_rows(tsv: &str) -> Result<Vec<(u64, NativeRow)>> {
    let mut lines = tsv.lines();
    ensure!(
        lines.next() == Some("user_id\trank\titem_id\tplaced_by\tscore\treason"),
        "recs.tsv: unexpected header"
    );
    let mut users: Vec<(u64, NativeRow)> = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        ensure!(f.len() == 6, "recs.tsv: {line:?} has {} fields", f.len());
        let user: u64 = f[0]
            .parse()
            .with_context(|| format!("recs.tsv: {line:?}"))?;
        let rank: usize = f[1]
            .parse()
            .with_context(|| format!("recs.tsv: {line:?}"))?;
        let entry = (
            f[2].parse()
                .with_context(|| format!("recs.tsv: {line:?}"))?,
            f[5].to_string(),
            f[4].parse()
                .with_context(|| format!("recs.tsv: {line:?}"))?,
        );
        match users.last_mut() {
            Some((u, rows)) if *u == user => {
                ensure!(
                    rank == rows.len() + 1,
                    "recs.tsv: user {user}'s ranks skip at {rank}"
                );
                rows.push(entry);
            }
            _ => {
                ensure!(
                    rank == 1,
                    "recs.tsv: user {user}'s row starts at rank {rank}"
                );
                users.push((user, vec![entry]));
            }
        }
    }
    Ok(users)
}

fn hex(s: &str) -> Result<Vec<u8>> {
    ensure!(s.len().is_multiple_of(2), "odd-length hex");
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
                .context("not hex")
        })
        .collect()
}
