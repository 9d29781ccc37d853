//! `edgerec cluster`: a Ballista cluster on this machine for `pipeline --engine ballista`
//! (the work is in `edgerec-cluster`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Subcommand;
use edgerec_cluster::{ClusterOptions, ExecutorOptions};

#[derive(Subcommand)]
pub enum Command {
    /// Start a scheduler and executors as separate processes on loopback; prints the scheduler
    /// URL for `pipeline --engine ballista --scheduler URL` once every executor has registered.
    Up {
        /// Executor processes.
        #[arg(long, default_value_t = 2)]
        executors: usize,
        /// Task slots (cores) per executor.
        #[arg(long, default_value_t = 1)]
        vcores: usize,
        /// Memory pool per executor in MiB (sorts and windows spill beyond it).
        #[arg(long, default_value_t = 2048)]
        memory_mib: u64,
        /// The cluster's directory: cluster.json, logs, executors' work directories.
        #[arg(long, default_value_os_t = default_dir())]
        dir: PathBuf,
    },
    /// Stop the cluster recorded in a directory (executors first, then the scheduler).
    Down {
        #[arg(long, default_value_os_t = default_dir())]
        dir: PathBuf,
    },
    /// Print the running cluster's record (cluster.json) and whether each process lives.
    Status {
        #[arg(long, default_value_os_t = default_dir())]
        dir: PathBuf,
    },
    /// Run a scheduler in the foreground (what `cluster up` starts).
    Scheduler {
        #[arg(long)]
        port: u16,
        /// Executors that must register before the scheduler reports ready (`GET /readyz`).
        #[arg(long, default_value_t = 1)]
        min_executors: usize,
    },
    /// Run an executor in the foreground (what `cluster up` starts).
    Executor {
        #[arg(long)]
        scheduler_port: u16,
        #[arg(long)]
        flight_port: u16,
        #[arg(long)]
        grpc_port: u16,
        #[arg(long, default_value_t = 1)]
        vcores: usize,
        #[arg(long, default_value_t = 2 << 30)]
        memory_pool_bytes: u64,
        #[arg(long)]
        work_dir: PathBuf,
    },
}

fn default_dir() -> PathBuf {
    std::env::temp_dir().join("edgerec-cluster")
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Up {
            executors,
            vcores,
            memory_mib,
            dir,
        } => {
            let program = std::env::current_exe().context("locating the edgerec binary")?;
            let opts = ClusterOptions {
                executors,
                vcores,
                memory_pool_bytes: memory_mib << 20,
                ..Default::default()
            };
            let info = edgerec_cluster::up(&program, &dir, &opts)?;
            eprintln!(
                "cluster up in {}: scheduler pid {}, {} executors × {} slots; stop it with `edgerec cluster down --dir {}`",
                dir.display(),
                info.pids[0],
                info.executor_ports.len(),
                info.vcores,
                dir.display()
            );
            println!("{}", info.scheduler_url);
            Ok(())
        }
        Command::Down { dir } => {
            match edgerec_cluster::down(&dir, Duration::from_secs(20))? {
                Some(info) => println!("stopped the cluster at {}", info.scheduler_url),
                None => println!("no cluster recorded in {}", dir.display()),
            }
            Ok(())
        }
        Command::Status { dir } => {
            let info = edgerec_cluster::ClusterInfo::read(&dir)?;
            let live: Vec<bool> = info
                .pids
                .iter()
                .map(|&p| edgerec_cluster::alive(p))
                .collect();
            let status = serde_json::json!({ "cluster": info, "alive": live });
            println!("{}", serde_json::to_string_pretty(&status)?);
            Ok(())
        }
        Command::Scheduler {
            port,
            min_executors,
        } => runtime()?.block_on(edgerec_cluster::run_scheduler(port, min_executors)),
        Command::Executor {
            scheduler_port,
            flight_port,
            grpc_port,
            vcores,
            memory_pool_bytes,
            work_dir,
        } => {
            let opts = ExecutorOptions {
                scheduler_port,
                flight_port,
                grpc_port,
                vcores,
                memory_pool_bytes,
                work_dir,
            };
            runtime()?.block_on(edgerec_cluster::run_executor(&opts))
        }
    }
}
