//! docs/cluster.md's Slurm recipe on a real Slurm: a private single-node
//! cluster on localhost (munged with a fresh key, slurmctld and slurmd in
//! the foreground with a generated slurm.conf, every file in one temp dir,
//! ports nobody else uses), `sbatch --array=1-4 --wait
//! scripts/slurm-sweep.sh SCENARIO shards`, then `qossim merge shards/*`;
//! the merged tables equal a single-machine sweep's.
//!
//! Needs Debian's `slurm-wlm` and `munge` (scripts/test.sh installs them; run
//! by hand as root, the test installs them itself) and root (slurmd starts
//! the job as its submitter; SlurmUser=root). Without them, or when the
//! cluster does not come up, the test is skipped with the reason and the
//! daemons' logs, except under `CI=true`, where that is a failure. The
//! daemons are stopped by pid and the temp dir removed however the test
//! ends.

mod common;
use common::peers::{find_binary, free_port, skip_or_fail};
use common::temp_dir;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Slurm and MUNGE programs the test runs.
const PROGRAMS: [&str; 8] = [
    "munged",
    "mungekey",
    "slurmctld",
    "slurmd",
    "sbatch",
    "sinfo",
    "squeue",
    "scancel",
];

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `Ok` when every program of [`PROGRAMS`] is there, after installing
/// `slurm-wlm` and `munge` from the distribution when some are missing and
/// we may (root, apt-get). `Err` says why not.
fn programs() -> Result<(), String> {
    let find_all = || PROGRAMS.iter().all(|p| find_binary(p).is_some());
    if find_all() {
        return Ok(());
    }
    let missing: Vec<&str> = PROGRAMS
        .iter()
        .copied()
        .filter(|p| find_binary(p).is_none())
        .collect();
    if !is_root() || find_binary("apt-get").is_none() {
        return Err(format!(
            "{} not installed (as root: apt-get install slurm-wlm munge; scripts/test.sh does it)",
            missing.join(", ")
        ));
    }
    eprintln!(
        "installing slurm-wlm and munge ({} missing)",
        missing.join(", ")
    );
    let t = Instant::now();
    let ok = Command::new("apt-get")
        .args(["update", "-qq"])
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "slurm-wlm",
                "munge",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success());
    eprintln!(
        "apt-get install slurm-wlm munge: {} after {:.1} s",
        if ok { "done" } else { "FAILED" },
        t.elapsed().as_secs_f64()
    );
    if find_all() {
        Ok(())
    } else {
        Err(format!(
            "apt-get install slurm-wlm munge did not provide {}",
            missing.join(", ")
        ))
    }
}

fn program(name: &str) -> PathBuf {
    find_binary(name).unwrap_or_else(|| panic!("{name} vanished"))
}

/// The machine's short host name: slurmctld runs only where it is the
/// configured SlurmctldHost.
fn short_hostname() -> String {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| {
            Command::new("hostname")
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        })
        .unwrap_or_default();
    let h = h.trim();
    h.split('.').next().unwrap_or(h).to_string()
}

/// The node's hardware as slurmd detects it (`slurmd -C`: CPUs, boards,
/// sockets, cores, threads, RealMemory), without its NodeName, and whether
/// it had to be raised to the two CPUs that scripts/slurm-sweep.sh asks
/// for per task (`#SBATCH --cpus-per-task=2`).
fn node_hardware() -> Result<(String, bool), String> {
    let out = Command::new(program("slurmd"))
        .arg("-C")
        .output()
        .map_err(|e| format!("slurmd -C: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("NodeName="))
        .ok_or_else(|| format!("slurmd -C printed no NodeName= line:\n{text}"))?;
    let fields: Vec<&str> = line
        .split_whitespace()
        .filter(|f| !f.starts_with("NodeName="))
        .collect();
    let value = |key: &str| {
        fields
            .iter()
            .find_map(|f| f.strip_prefix(key))
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| format!("slurmd -C: no {key}<number> in {line:?}"))
    };
    let cpus = value("CPUs=")?;
    let memory = value("RealMemory=")?;
    if cpus >= 2 {
        Ok((fields.join(" "), false))
    } else {
        // A one-CPU machine: declare two (slurmd then trusts slurm.conf,
        // SlurmdParameters=config_overrides) so the script's two-CPU tasks
        // can be scheduled at all.
        Ok((format!("CPUs=2 RealMemory={memory}"), true))
    }
}

/// The private cluster: its directory and daemons. Dropping it cancels
/// every job of the cluster, stops the daemons by pid (SIGTERM, then
/// SIGKILL after 10 s) and removes the directory.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    node: String,
    daemons: Vec<(&'static str, Child)>,
}

impl Cluster {
    fn munge_socket(&self) -> PathBuf {
        self.dir.join("munge/munge.sock")
    }

    /// A Slurm client command talking to this cluster only.
    fn client(&self, name: &str) -> Command {
        let mut c = Command::new(program(name));
        // a test run inside a Slurm job must not hand the outer job's
        // variables to this cluster's jobs
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("SLURM_") {
                c.env_remove(k);
            }
        }
        c.env("SLURM_CONF", &self.conf);
        c
    }

    fn spawn(&mut self, name: &'static str, mut cmd: Command) -> Result<(), String> {
        let log = |suffix: &str| {
            File::create(self.dir.join(format!("{name}.{suffix}")))
                .map_err(|e| format!("{name}.{suffix}: {e}"))
        };
        cmd.stdin(Stdio::null())
            .stdout(log("stdout")?)
            .stderr(log("stderr")?)
            .env("SLURM_CONF", &self.conf);
        let child = cmd.spawn().map_err(|e| format!("start {name}: {e}"))?;
        self.daemons.push((name, child));
        Ok(())
    }

    /// A daemon that has exited, with its status.
    fn exited(&mut self) -> Option<String> {
        self.daemons.iter_mut().find_map(|(name, c)| {
            c.try_wait()
                .ok()
                .flatten()
                .map(|st| format!("{name} exited ({st})"))
        })
    }

    /// Every log and output file of the daemons and jobs.
    fn logs(&self) -> String {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.push(self.dir.join("munge/munged.log"));
        files.sort();
        let mut s = String::new();
        for f in files {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            let keep = name.ends_with(".log")
                || name.ends_with(".stdout")
                || name.ends_with(".stderr")
                || name.ends_with(".out")
                || name == "slurm.conf";
            if !keep {
                continue;
            }
            if let Ok(text) = std::fs::read_to_string(&f) {
                if !text.trim().is_empty() {
                    s += &format!("----- {}\n{}\n", f.display(), text.trim_end());
                }
            }
        }
        s
    }

    /// Polls `ready` every 200 ms until it holds, a daemon exits or
    /// `limit` passes.
    fn wait_for(
        &mut self,
        what: &str,
        limit: Duration,
        mut ready: impl FnMut(&Self) -> bool,
    ) -> Result<(), String> {
        let t = Instant::now();
        loop {
            if ready(self) {
                return Ok(());
            }
            if let Some(e) = self.exited() {
                return Err(format!("{e} while waiting for {what}"));
            }
            if t.elapsed() > limit {
                return Err(format!("{what}: not after {} s", limit.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// munged, slurmctld and slurmd up, the node idle. `Err` is why not
    /// (the caller adds the logs).
    fn start(&mut self) -> Result<(), String> {
        let munge = self.dir.join("munge");
        std::fs::create_dir_all(&munge).map_err(|e| e.to_string())?;
        for d in ["state", "spool"] {
            std::fs::create_dir_all(self.dir.join(d)).map_err(|e| e.to_string())?;
        }
        // munged refuses a key or socket directory others can write to
        use std::os::unix::fs::PermissionsExt;
        for d in [&self.dir, &munge] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| e.to_string())?;
        }
        let key = munge.join("munge.key");
        let st = Command::new(program("mungekey"))
            .args(["--create", "--bits=1024", "--keyfile"])
            .arg(&key)
            .status()
            .map_err(|e| format!("mungekey: {e}"))?;
        if !st.success() {
            return Err(format!("mungekey --create: {st}"));
        }
        let mut cmd = Command::new(program("munged"));
        cmd.args(["--foreground", "--force"])
            .arg(format!("--key-file={}", key.display()))
            .arg(format!("--socket={}", self.munge_socket().display()))
            .arg(format!("--pid-file={}", munge.join("munged.pid").display()))
            .arg(format!("--log-file={}", munge.join("munged.log").display()))
            .arg(format!(
                "--seed-file={}",
                munge.join("munged.seed").display()
            ));
        self.spawn("munged", cmd)?;
        let socket = self.munge_socket();
        self.wait_for("munged's socket", Duration::from_secs(10), |_| {
            socket.exists()
        })?;

        let (hardware, overrides) = node_hardware()?;
        let host = short_hostname();
        let d = self.dir.display();
        let conf = format!(
            "# generated by tests/cluster_slurm.rs: a private one-node cluster\n\
             ClusterName=qossimtest\n\
             SlurmctldHost={host}(127.0.0.1)\n\
             SlurmctldPort={ctld_port}\n\
             SlurmdPort={slurmd_port}\n\
             SlurmUser=root\n\
             SlurmdUser=root\n\
             AuthType=auth/munge\n\
             CredType=cred/munge\n\
             AuthInfo=socket={sock}\n\
             StateSaveLocation={d}/state\n\
             SlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/slurmctld.pid\n\
             SlurmdPidFile={d}/slurmd.pid\n\
             SlurmctldLogFile={d}/slurmctld.log\n\
             SlurmdLogFile={d}/slurmd.log\n\
             SlurmctldDebug=info\n\
             SlurmdDebug=info\n\
             MailProg=/bin/true\n\
             ProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\n\
             JobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\n\
             JobCompType=jobcomp/none\n\
             MpiDefault=none\n\
             SwitchType=switch/none\n\
             SelectType=select/cons_tres\n\
             SelectTypeParameters=CR_Core\n\
             ReturnToService=2\n\
             MinJobAge={min_job_age}\n\
             {overrides}\
             NodeName={node} NodeAddr=127.0.0.1 NodeHostname={host} {hardware} State=UNKNOWN\n\
             PartitionName=qossim Nodes={node} Default=YES MaxTime=INFINITE State=UP\n",
            // sbatch --wait sleeps 2 s, then ×4 (to 8, then 32 s) while the
            // sleep is under MinJobAge / 2: with the default 300 s a
            // ten-second array is seen done after 42 s. 5 s keeps it at 2 s
            // and a finished task's record outlives one poll.
            min_job_age = 5,
            ctld_port = free_port(),
            slurmd_port = free_port(),
            sock = self.munge_socket().display(),
            node = self.node,
            overrides = if overrides {
                "SlurmdParameters=config_overrides\n"
            } else {
                ""
            },
        );
        std::fs::write(&self.conf, conf).map_err(|e| e.to_string())?;

        let mut cmd = Command::new(program("slurmctld"));
        cmd.arg("-D");
        self.spawn("slurmctld", cmd)?;
        let mut cmd = Command::new(program("slurmd"));
        cmd.args(["-D", "-N", &self.node]);
        self.spawn("slurmd", cmd)?;
        self.wait_for(
            "the node to be idle (sinfo)",
            Duration::from_secs(60),
            |c| {
                c.client("sinfo")
                    .args(["-h", "-N", "-n", &c.node, "-o", "%T"])
                    .output()
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "idle")
            },
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let ctld_up = self
            .daemons
            .iter_mut()
            .any(|(n, c)| *n == "slurmctld" && matches!(c.try_wait(), Ok(None)));
        if ctld_up {
            // a job still running (the test failed or timed out) is
            // cancelled while slurmctld and slurmd can still end it
            let _ = self
                .client("scancel")
                .args(["--quiet", "--partition=qossim"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            std::thread::sleep(Duration::from_millis(500));
        }
        // the reverse of the start order: slurmd, slurmctld, munged
        for (_, child) in self.daemons.iter_mut().rev() {
            if let Ok(None) = child.try_wait() {
                // SAFETY: kill(2) on our own child's pid, not yet reaped
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
                let t = Instant::now();
                while matches!(child.try_wait(), Ok(None)) && t.elapsed() < Duration::from_secs(10)
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(cmd: &mut Command, what: &str) {
    let st = cmd.status().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(st.success(), "{what}: {st}");
}

#[test]
fn slurm_array_on_a_real_cluster() {
    let t0 = Instant::now();
    if let Err(why) = programs() {
        skip_or_fail(&format!("slurm_array_on_a_real_cluster: {why}"));
        return;
    }
    if !is_root() {
        skip_or_fail(
            "slurm_array_on_a_real_cluster: needs root (slurmd starts jobs as their submitter)",
        );
        return;
    }
    let dir = temp_dir("slurm-cluster");
    let mut cluster = Cluster {
        conf: dir.join("slurm.conf"),
        dir,
        node: "qossim-node".into(),
        daemons: Vec::new(),
    };
    if let Err(why) = cluster.start() {
        let msg = format!(
            "slurm_array_on_a_real_cluster: the single-node Slurm cluster did not start: {why}\n{}",
            cluster.logs()
        );
        skip_or_fail(&msg);
        return;
    }
    let t_up = t0.elapsed();

    // docs/cluster.md: `sbatch --array=1-8 --wait scripts/slurm-sweep.sh
    // scenarios/compare-loss.toml shards && qossim merge shards/* --out ...`,
    // here four tasks (of two runs or one) on the small sweep
    let scenario = root().join("tests/fixtures/sweep-small.toml");
    let mut sbatch = cluster
        .client("sbatch")
        .arg("--array=1-4")
        .arg("--wait")
        .arg(root().join("scripts/slurm-sweep.sh"))
        .arg(&scenario)
        .arg("shards")
        .current_dir(&cluster.dir)
        .env("QOSSIM", env!("CARGO_BIN_EXE_qossim"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sbatch");
    let t = Instant::now();
    let limit = Duration::from_secs(300);
    let status = loop {
        if let Some(st) = sbatch.try_wait().expect("sbatch") {
            break Some(st);
        }
        if t.elapsed() > limit {
            let _ = sbatch.kill();
            let _ = sbatch.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = sbatch.wait_with_output().expect("sbatch output");
    let t_array = t.elapsed();
    let queue = cluster
        .client("squeue")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "sbatch --array=1-4 --wait: {}\nstdout: {}\nstderr: {}\nsqueue:\n{queue}\n{}",
        status.map_or(format!("still waiting after {} s", limit.as_secs()), |s| s
            .to_string()),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        cluster.logs()
    );

    // docs/cluster.md: `qossim merge shards/* --out results/...`
    run(
        Command::new("bash")
            .arg("-c")
            .arg(format!(
                "'{}' merge shards/* --out merged",
                env!("CARGO_BIN_EXE_qossim")
            ))
            .current_dir(&cluster.dir),
        "qossim merge shards/*",
    );
    // every array task ran one shard, with the two CPUs the script's
    // #SBATCH line asks for (SLURM_CPUS_PER_TASK → --jobs)
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(cluster.dir.join("merged/manifest.json")).expect("merged manifest"),
    )
    .expect("manifest.json");
    let shards: Vec<(String, u64)> = manifest["merged_from"]
        .as_array()
        .expect("merged_from")
        .iter()
        .map(|m| {
            (
                m["shard"].as_str().expect("shard").to_string(),
                m["jobs"].as_u64().expect("jobs"),
            )
        })
        .collect();
    assert_eq!(
        shards,
        (1..=4).map(|k| (format!("{k}/4"), 2)).collect::<Vec<_>>(),
        "merged_from"
    );

    let whole = cluster.dir.join("whole");
    run(
        Command::new(env!("CARGO_BIN_EXE_qossim"))
            .arg("sweep")
            .arg(&scenario)
            .args(["--quiet", "--out"])
            .arg(&whole),
        "single-machine sweep",
    );
    for f in ["runs.csv", "summary.csv", "messages.csv"] {
        let a = std::fs::read(whole.join(f)).unwrap_or_else(|e| panic!("whole/{f}: {e}"));
        let b = std::fs::read(cluster.dir.join("merged").join(f))
            .unwrap_or_else(|e| panic!("merged/{f}: {e}"));
        assert!(
            a == b,
            "{f}: the Slurm array's merge differs from a single-machine sweep"
        );
    }
    eprintln!(
        "slurm_array_on_a_real_cluster: cluster up in {:.1} s, array of 4 in {:.1} s, total {:.1} s",
        t_up.as_secs_f64(),
        t_array.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}
