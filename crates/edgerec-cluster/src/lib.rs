//! The training-data pipeline on an Apache Ballista cluster.
//!
//! The pipeline's plans are DataFusion plans over Parquet plus two Rust functions (the
//! downsampling hash and the per-user feature merge, `edgerec_pipeline::scalar_udfs` and
//! `window_udfs`). Ballista ships plans between processes by name, so those functions must be
//! registered in all three places that decode a plan:
//!
//! - the **client** ([`client`]): a DataFusion session whose queries the scheduler runs;
//! - the **scheduler** ([`run_scheduler`]): it plans the stages in its own session
//!   ([`SchedulerConfig::override_session_builder`]);
//! - every **executor** ([`run_executor`]): it decodes each task against its function registry
//!   ([`ExecutorProcessConfig::override_function_registry`]).
//!
//! [`up`] starts a scheduler and executors as separate processes on loopback (by running a
//! program that serves them, the `edgerec` binary's `cluster scheduler` and `cluster executor`),
//! waits until every executor has registered, and records the cluster in `cluster.json` in its
//! directory. [`down`] stops the processes recorded there. Executors read the world and write
//! their spill and shuffle files on the local file system, so a cluster built this way spans
//! one machine; a multi-machine cluster needs the world and the output on a shared path.

mod process;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use ballista::prelude::SessionContextExt as _;
use ballista_core::extension::SessionConfigExt as _;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use serde::{Deserialize, Serialize};

pub use process::{alive, stop};

/// Where [`up`] records a running cluster, in the cluster's directory.
pub const CLUSTER_FILE: &str = "cluster.json";

/// A running cluster as [`up`] recorded it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterInfo {
    /// The URL clients pass to [`client`] (`df://127.0.0.1:PORT`).
    pub scheduler_url: String,
    /// The scheduler's gRPC port.
    pub scheduler_port: u16,
    /// Process ids: the scheduler first, then the executors.
    pub pids: Vec<u32>,
    /// Each executor's Flight and gRPC ports.
    pub executor_ports: Vec<(u16, u16)>,
    /// Task slots per executor.
    pub vcores: usize,
}

impl ClusterInfo {
    /// Reads `cluster.json` from a cluster directory.
    pub fn read(dir: &Path) -> Result<ClusterInfo> {
        let path = dir.join(CLUSTER_FILE);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("reading {} (is a cluster up there?)", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    /// Total task slots over the executors: the partitions a job should use.
    pub fn task_slots(&self) -> usize {
        self.vcores * self.executor_ports.len()
    }
}

/// How [`up`] sizes the cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Executor processes.
    pub executors: usize,
    /// Task slots per executor (concurrent tasks, one core each).
    pub vcores: usize,
    /// Memory pool per executor, bytes (split over its slots; sorts and windows spill beyond it).
    pub memory_pool_bytes: u64,
    /// How long to wait for the scheduler and every executor to be ready.
    pub ready_timeout: Duration,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            executors: 2,
            vcores: 1,
            memory_pool_bytes: 2 << 30,
            ready_timeout: Duration::from_secs(60),
        }
    }
}

/// Options of one executor process ([`run_executor`]).
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler's gRPC port on loopback.
    pub scheduler_port: u16,
    /// Arrow Flight port (shuffle reads and results).
    pub flight_port: u16,
    /// gRPC port (task launches).
    pub grpc_port: u16,
    /// Task slots.
    pub vcores: usize,
    /// Memory pool, bytes (split over the slots).
    pub memory_pool_bytes: u64,
    /// Shuffle and spill files.
    pub work_dir: PathBuf,
}

const LOOPBACK: &str = "127.0.0.1";

/// The scheduler's session: DataFusion's and Ballista's defaults plus the pipeline's functions.
fn scheduler_session(
    config: SessionConfig,
) -> datafusion::common::Result<datafusion::execution::SessionState> {
    let ctx =
        SessionContext::new_with_state(ballista_core::utils::default_session_builder(config)?);
    edgerec_pipeline::register_functions(&ctx);
    Ok(ctx.state())
}

/// Runs a scheduler on `127.0.0.1:port` until the process is interrupted (SIGINT or SIGTERM).
/// It reports ready (`GET /readyz` answers 200) once `min_executors` executors have registered.
pub async fn run_scheduler(port: u16, min_executors: usize) -> Result<()> {
    let config = SchedulerConfig {
        bind_host: LOOPBACK.into(),
        external_host: LOOPBACK.into(),
        bind_port: port,
        min_ready_executors: min_executors,
        override_session_builder: Some(Arc::new(scheduler_session)),
        ..Default::default()
    };
    let addr = format!("{LOOPBACK}:{port}").parse()?;
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .context("creating the scheduler's cluster state")?;
    tokio::select! {
        served = ballista_scheduler::scheduler_process::start_server(cluster, addr, Arc::new(config)) => {
            served.context("the scheduler stopped")
        }
        signal = process::terminated(true) => signal,
    }
}

/// Runs an executor until the process is interrupted; removes its work directory afterwards.
pub async fn run_executor(opts: &ExecutorOptions) -> Result<()> {
    let mut registry = BallistaFunctionRegistry::default();
    for f in edgerec_pipeline::scalar_udfs() {
        registry
            .scalar_functions
            .insert(f.name().to_string(), Arc::new(f));
    }
    for f in edgerec_pipeline::window_udfs() {
        registry
            .window_functions
            .insert(f.name().to_string(), Arc::new(f));
    }
    std::fs::create_dir_all(&opts.work_dir)
        .with_context(|| format!("creating {}", opts.work_dir.display()))?;
    let work_dir = opts
        .work_dir
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", opts.work_dir.display()))?;
    let config = ExecutorProcessConfig {
        bind_host: LOOPBACK.into(),
        external_host: Some(LOOPBACK.into()),
        port: opts.flight_port,
        grpc_port: opts.grpc_port,
        scheduler_host: LOOPBACK.into(),
        scheduler_port: opts.scheduler_port,
        scheduler_connect_timeout_seconds: 10,
        vcores: opts.vcores.max(1),
        work_dir: Some(work_dir.to_string()),
        memory_pool_size: Some(opts.memory_pool_bytes),
        // Short heartbeats: the scheduler learns of a new executor as soon as it starts.
        executor_heartbeat_interval_seconds: 5,
        override_function_registry: Some(Arc::new(registry)),
        ..Default::default()
    };
    // The executor stops itself on SIGINT (telling the scheduler); SIGTERM ends it here.
    let result = tokio::select! {
        r = start_executor_process(Arc::new(config)) => r.context("the executor stopped"),
        signal = process::terminated(false) => signal,
    };
    let _ = std::fs::remove_dir_all(&opts.work_dir);
    result
}

/// A client session on the cluster at `url` (`df://host:port`) with the pipeline's options and
/// functions; `partitions` is how many partitions each stage is split into (one per task slot
/// keeps every executor busy).
pub async fn client(url: &str, partitions: usize) -> Result<SessionContext> {
    // The static distributed planner. Ballista's adaptive planner (on by default in 55.0)
    // re-plans stages from runtime statistics; on the 1M-user world some of its task plans
    // held a sort over zero partitions, which DataFusion 55.2 asserts against when the
    // executor decodes the task (`topk_emitter_count > 0` in `SortExec::reset_state`): the
    // decoding panicked in both executors and the job hung. The static planner keeps the
    // pipeline's own `--partitions` in every stage, as the embedded engine does.
    let config = edgerec_pipeline::session_config(partitions)
        .upgrade_for_ballista()
        .with_ballista_adaptive_query_planner(false);
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .build();
    let ctx = SessionContext::remote_with_state(url, state)
        .await
        .with_context(|| format!("connecting to the Ballista scheduler at {url}"))?;
    edgerec_pipeline::register_functions(&ctx);
    Ok(ctx)
}

/// Runs the whole pipeline ([`edgerec_pipeline::run_in`]) on the cluster at `url`, with
/// `config.partitions` partitions per stage (0: one per core of this machine). The world must
/// be at the same path for the executors as for this process; the output is written here.
pub async fn run_pipeline(
    url: &str,
    world_dir: &Path,
    out: &Path,
    config: &edgerec_pipeline::PipelineConfig,
) -> Result<edgerec_pipeline::Report> {
    let ctx = client(url, config.partitions()).await?;
    edgerec_pipeline::run_in(&ctx, world_dir, out, config).await
}

/// Starts a cluster in `dir` by running `program` (which must serve `cluster scheduler` and
/// `cluster executor` as the `edgerec` binary does): a scheduler and `opts.executors` executors,
/// each a process of its own with its log in `dir`, on free loopback ports. Returns once every
/// executor has registered; on any failure the processes started so far are stopped.
pub fn up(program: &Path, dir: &Path, opts: &ClusterOptions) -> Result<ClusterInfo> {
    ensure!(opts.executors > 0, "a cluster needs at least one executor");
    ensure!(opts.vcores > 0, "an executor needs at least one task slot");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = std::path::absolute(dir)?;
    if let Ok(running) = ClusterInfo::read(&dir)
        && running.pids.iter().any(|&p| process::alive(p))
    {
        bail!(
            "a cluster is already up in {} ({}); stop it with `edgerec cluster down`",
            dir.display(),
            running.scheduler_url
        );
    }
    let ports = process::free_ports(1 + 2 * opts.executors)?;
    let scheduler_port = ports[0];
    let mut pids = Vec::new();
    let started = (|| -> Result<ClusterInfo> {
        pids.push(process::spawn(
            program,
            &[
                "cluster".into(),
                "scheduler".into(),
                "--port".into(),
                scheduler_port.to_string(),
                "--min-executors".into(),
                opts.executors.to_string(),
            ],
            &dir.join("scheduler.log"),
        )?);
        process::wait_for_port(scheduler_port, pids[0], opts.ready_timeout)
            .context("the scheduler did not start (see scheduler.log)")?;
        let mut executor_ports = Vec::new();
        for k in 0..opts.executors {
            let (flight, grpc) = (ports[1 + 2 * k], ports[2 + 2 * k]);
            let work = dir.join(format!("executor-{k}"));
            pids.push(process::spawn(
                program,
                &[
                    "cluster".into(),
                    "executor".into(),
                    "--scheduler-port".into(),
                    scheduler_port.to_string(),
                    "--flight-port".into(),
                    flight.to_string(),
                    "--grpc-port".into(),
                    grpc.to_string(),
                    "--vcores".into(),
                    opts.vcores.to_string(),
                    "--memory-pool-bytes".into(),
                    opts.memory_pool_bytes.to_string(),
                    "--work-dir".into(),
                    work.display().to_string(),
                ],
                &dir.join(format!("executor-{k}.log")),
            )?);
            executor_ports.push((flight, grpc));
        }
        process::wait_until_ready(scheduler_port, &pids, opts.ready_timeout)
            .context("the executors did not register (see executor-*.log)")?;
        Ok(ClusterInfo {
            scheduler_url: format!("df://{LOOPBACK}:{scheduler_port}"),
            scheduler_port,
            pids: pids.clone(),
            executor_ports,
            vcores: opts.vcores,
        })
    })();
    match started {
        Ok(info) => {
            let record = serde_json::to_vec_pretty(&info)?;
            edgerec_data::fs::write_atomic(&dir.join(CLUSTER_FILE), &record)?;
            Ok(info)
        }
        Err(e) => {
            // Executors first, so they deregister from a scheduler that is still there.
            let mut order = pids.clone();
            order.reverse();
            let _ = process::stop(&order, Duration::from_secs(10));
            Err(e)
        }
    }
}

/// Stops the cluster recorded in `dir` (executors first, then the scheduler) and removes its
/// record. Returns what was stopped, or `None` when no cluster was recorded there.
pub fn down(dir: &Path, timeout: Duration) -> Result<Option<ClusterInfo>> {
    if !dir.join(CLUSTER_FILE).exists() {
        return Ok(None);
    }
    let info = ClusterInfo::read(dir)?;
    let Some((&scheduler, executors)) = info.pids.split_first() else {
        bail!("{} records no processes", dir.join(CLUSTER_FILE).display());
    };
    let mut order = executors.to_vec();
    order.push(scheduler);
    process::stop(&order, timeout)?;
    std::fs::remove_file(dir.join(CLUSTER_FILE))
        .with_context(|| format!("removing {}", dir.join(CLUSTER_FILE).display()))?;
    Ok(Some(info))
}

/// Waits until `f` holds or `timeout` passes.
fn poll(timeout: Duration, mut f: impl FnMut() -> Result<bool>) -> Result<bool> {
    let start = Instant::now();
    loop {
        if f()? {
            return Ok(true);
        }
        if start.elapsed() > timeout {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
