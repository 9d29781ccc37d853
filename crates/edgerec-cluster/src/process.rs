//! The cluster's processes on this machine: spawning, readiness, stopping.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::poll;

/// Spawns `program args…` in a process group of its own (a terminal's Ctrl-C reaches the
/// command that started the cluster, not the cluster), stdout and stderr to `log`.
pub(crate) fn spawn(program: &Path, args: &[String], log: &Path) -> Result<u32> {
    use std::os::unix::process::CommandExt as _;
    let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    Ok(child.id())
}

/// `n` distinct loopback ports that were free a moment ago.
pub(crate) fn free_ports(n: usize) -> Result<Vec<u16>> {
    // Held together so no two are the same, released before the processes bind them.
    let listeners = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<std::io::Result<Vec<_>>>()
        .context("finding free loopback ports")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

fn connects(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Waits until `port` accepts connections while `pid` lives.
pub(crate) fn wait_for_port(port: u16, pid: u32, timeout: Duration) -> Result<()> {
    let ready = poll(timeout, || {
        if !alive(pid) {
            bail!("process {pid} exited");
        }
        Ok(connects(port))
    })?;
    if !ready {
        bail!("port {port} not open after {timeout:?}");
    }
    Ok(())
}

/// The scheduler's `GET /readyz`: true once its minimum of executors has registered.
fn scheduler_ready(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if s.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < head.len() {
        match s.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    head[..got].starts_with(b"HTTP/1.1 200")
}

/// Waits until the scheduler reports ready while every process lives.
pub(crate) fn wait_until_ready(scheduler_port: u16, pids: &[u32], timeout: Duration) -> Result<()> {
    let ready = poll(timeout, || {
        if let Some(p) = pids.iter().find(|&&p| !alive(p)) {
            bail!("process {p} exited");
        }
        Ok(scheduler_ready(scheduler_port))
    })?;
    if !ready {
        bail!("not ready after {timeout:?}");
    }
    Ok(())
}

/// Whether process `pid` is running (a zombie is not).
pub fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks that the process exists.
    if pid <= 0 || unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    // An exited child whose parent has not reaped it yet still answers kill(0).
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_none_or(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// Whether `pid` is one of the cluster's processes (its command line says `cluster scheduler`
/// or `cluster executor`): a recorded pid reused by another process is left alone.
fn ours(pid: u32) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => {
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            args.windows(2)
                .any(|w| w[0] == b"cluster" && (w[1] == b"scheduler" || w[1] == b"executor"))
        }
        // No /proc: trust the record.
        Err(_) => true,
    }
}

fn signal(pid: u32, sig: i32) {
    if let Ok(pid) = i32::try_from(pid)
        && pid > 0
    {
        // SAFETY: plain kill(2) on a process we started.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Stops the processes in order: SIGINT (an executor then tells the scheduler it is leaving),
/// and SIGKILL for any still running after `timeout`.
pub fn stop(pids: &[u32], timeout: Duration) -> Result<()> {
    for &pid in pids {
        if !alive(pid) || !ours(pid) {
            continue;
        }
        signal(pid, libc::SIGINT);
        if !poll(timeout, || Ok(!alive(pid)))? {
            signal(pid, libc::SIGKILL);
            if !poll(Duration::from_secs(5), || Ok(!alive(pid)))? {
                bail!("process {pid} did not stop");
            }
        }
    }
    Ok(())
}

/// Resolves when the process receives SIGTERM, or SIGINT too with `sigint` (an executor
/// handles SIGINT itself: it tells the scheduler and returns).
pub(crate) async fn terminated(sigint: bool) -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    if sigint {
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
    } else {
        term.recv().await;
    }
    Ok(())
}
