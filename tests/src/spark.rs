//! Unmodified Apache Spark on hearth: pyspark's own Spark (`spark/setup.sh` installs it
//! under `~/.cache`, with the hearth cluster manager's jar), a `hearth local` cluster, and
//! `spark-submit` runs in their own process groups, killed whole on drop.

use crate::harness::{bin, get_over, Proc};
use crate::procs::{self, ProcInfo};
use crate::wait::Wait;
use hearth_proto::tls::TlsFiles;
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where Spark, its Python and the hearth jar are (from `spark/setup.sh`).
pub struct SparkKit {
    pub spark_home: PathBuf,
    pub python: PathBuf,
    pub jar: PathBuf,
}

/// The kit, set up once per test process (`spark/setup.sh`: a virtualenv with pyspark
/// 4.3.0 and the jar, both under `~/.cache/hearth-spark`; quick when they exist).
pub fn kit() -> &'static SparkKit {
    static KIT: OnceLock<SparkKit> = OnceLock::new();
    KIT.get_or_init(|| {
        let script = repo().join("spark/setup.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .expect("run spark/setup.sh");
        assert!(
            out.status.success(),
            "spark/setup.sh failed: it needs python3-venv and a JDK 17 (`.ci/run` installs both)"
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let get = |key: &str| -> PathBuf {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("spark/setup.sh printed no {key}: {text}"))
                .into()
        };
        SparkKit {
            spark_home: get("SPARK_HOME"),
            python: get("PYSPARK_PYTHON"),
            jar: get("HEARTH_SPARK_JAR"),
        }
    })
}

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the repo")
        .to_path_buf()
}

impl SparkKit {
    /// One of Spark's own example programs (`pi.py`, `wordcount.py`, ...).
    pub fn example(&self, name: &str) -> PathBuf {
        self.spark_home.join("examples/src/main/python").join(name)
    }
}

/// A PySpark program of this repo's (`tests/spark/NAME`).
pub fn program(name: &str) -> PathBuf {
    repo().join("tests/spark").join(name)
}

/// `GET` with the JSON API's redirects followed (at most 3): status and JSON body.
pub fn get_json(url: &str) -> Option<(u16, Value)> {
    get_json_over(url, None)
}

/// [`get_json`] of `http://...`, or of `https://...` with the cluster's TLS files.
pub fn get_json_over(url: &str, tls: Option<&TlsFiles>) -> Option<(u16, Value)> {
    let mut url = url.to_owned();
    for _ in 0..3 {
        let (code, body) = get_over(&url, tls).ok()?;
        let json: Value = serde_json::from_str(&body).ok()?;
        if code == 307 {
            let leader = json["leader"].as_str()?;
            let (scheme, rest) = url.split_once("://")?;
            let path = rest.split_once('/')?.1.to_owned();
            url = format!("{scheme}://{leader}/{path}");
            continue;
        }
        return Some((code, json));
    }
    None
}

/// A `hearth local` cluster (masters replicating through Raft, workers), stopped on drop.
pub struct Local {
    pub proc: Proc,
    /// `hearth://h:p,...`, as `hearth local` prints it.
    pub masters: String,
    /// Each master's gRPC address (which also answers HTTP/1.1: `/json`, `/v1/apps`).
    pub addrs: Vec<String>,
    pub dir: PathBuf,
    /// The cluster secret's file (`HEARTH_SECRET_FILE`).
    pub secret: PathBuf,
    /// With `--tls`: the files `hearth local` printed (`HEARTH_TLS_CERT`, ...).
    pub tls: Option<TlsFiles>,
    /// The first master's HTTP port, as `hearth local` prints it (`HEARTH_UI`).
    pub ui: String,
}

impl Local {
    /// Starts `hearth local --dir DIR/data ARGS` and waits until a leader is ALIVE with
    /// `workers` workers.
    pub fn start(dir: &Path, workers: usize, args: &[&str]) -> Local {
        let data = dir.join("data");
        let mut all: Vec<String> = vec![
            "local".into(),
            "--dir".into(),
            data.to_string_lossy().into_owned(),
            "--workers".into(),
            workers.to_string(),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        let mut proc = Proc::spawn("local", &bin("hearth"), &all, dir.join("local.log"));
        let v = proc.announced(
            &["HEARTH_MASTERS", "HEARTH_UI", "HEARTH_SECRET_FILE"],
            Duration::from_secs(30),
        );
        let (masters, ui) = (v[0].clone(), v[1].clone());
        let secret = PathBuf::from(&v[2]);
        crate::harness::remember_secret(&masters, &secret);
        let tls = args.contains(&"--tls").then(|| {
            let t = proc.announced(
                &["HEARTH_TLS_CERT", "HEARTH_TLS_KEY", "HEARTH_TLS_CA"],
                Duration::from_secs(5),
            );
            TlsFiles {
                cert: PathBuf::from(&t[0]),
                key: PathBuf::from(&t[1]),
                ca: PathBuf::from(&t[2]),
            }
        });
        if let Some(t) = &tls {
            crate::harness::remember_tls(&masters, t);
        }
        let addrs = masters
            .trim_start_matches("hearth://")
            .split(',')
            .map(str::to_owned)
            .collect();
        let local = Local {
            proc,
            masters,
            addrs,
            dir: data,
            secret,
            tls,
            ui,
        };
        let ready = || {
            let j = local.leader_json()?;
            (j["aliveworkers"] == workers).then_some(())
        };
        Wait::new(
            format!("an ALIVE leader with {workers} workers"),
            Duration::from_secs(60),
        )
        .until(ready)
        .unwrap_or_else(|e| panic!("{e}"));
        local
    }

    /// [`get_json_over`] of `path` at `addr`, over TLS when the cluster speaks it.
    pub fn get_json(&self, addr: &str, path: &str) -> Option<(u16, Value)> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        get_json_over(&format!("{scheme}://{addr}{path}"), self.tls.as_ref())
    }

    /// The Spark master URL (`spark+hearth://h:p,...`).
    pub fn spark_url(&self) -> String {
        format!("spark+hearth://{}", self.addrs.join(","))
    }

    /// The secret, as the JSON API wants it (`Authorization: Bearer ...`).
    pub fn bearer(&self) -> String {
        let text = std::fs::read_to_string(&self.secret).expect("read the secret");
        format!("Bearer {}", text.trim())
    }

    /// [`SparkRun::submit`] on this cluster, with its secret.
    pub fn submit(
        &self,
        dir: &Path,
        name: &str,
        confs: &[&str],
        program: &Path,
        args: &[&str],
    ) -> SparkRun {
        let mut mine = vec![format!("spark.hearth.secretFile={}", self.secret.display())];
        if let Some(t) = &self.tls {
            mine.push(format!("spark.hearth.tls.cert={}", t.cert.display()));
            mine.push(format!("spark.hearth.tls.key={}", t.key.display()));
            mine.push(format!("spark.hearth.tls.ca={}", t.ca.display()));
        }
        let all: Vec<&str> = confs
            .iter()
            .copied()
            .chain(mine.iter().map(String::as_str))
            .collect();
        SparkRun::submit(dir, name, &self.spark_url(), &all, program, args)
    }

    /// The leader's gRPC address, as any master that answers names it.
    pub fn leader(&self) -> Option<String> {
        self.addrs.iter().find_map(|a| {
            let (_, j) = self.get_json(a, "/json")?;
            j["leader"].as_str().map(str::to_owned)
        })
    }

    /// The leader's `/json`, if it is ALIVE.
    pub fn leader_json(&self) -> Option<Value> {
        let leader = self.leader()?;
        let (code, j) = self.get_json(&leader, "/json")?;
        (code == 200 && j["status"] == "ALIVE").then_some(j)
    }

    /// `GET /v1/apps/ID` on the leader (linearizable there).
    pub fn app(&self, id: &str) -> Option<Value> {
        self.addrs.iter().find_map(|a| {
            let (code, j) = self.get_json(a, &format!("/v1/apps/{id}"))?;
            (code == 200).then_some(j)
        })
    }

    /// The id of the app named `name` (active or completed), as the leader lists it.
    pub fn app_named(&self, name: &str) -> Option<String> {
        let j = self.leader_json()?;
        ["activeapps", "completedapps"]
            .iter()
            .filter_map(|k| j[*k].as_array())
            .flatten()
            .find(|a| a["name"] == name)
            .and_then(|a| a["id"].as_str().map(str::to_owned))
    }

    /// The pid of the master process serving `addr` (`127.0.0.1:port`).
    pub fn master_pid(&self, addr: &str) -> Option<u32> {
        let port = addr.rsplit(':').next()?;
        procs::all()
            .into_iter()
            .find(|p| {
                p.argv.get(1).map(String::as_str) == Some("master")
                    && p.argv.windows(2).any(|w| w[0] == "--port" && w[1] == port)
                    && p.argv
                        .iter()
                        .any(|a| a.contains(self.dir.to_str().unwrap_or("?")))
            })
            .map(|p| p.pid)
    }

    /// The app's executor JVMs on this cluster's workers (`CoarseGrainedExecutorBackend`
    /// processes carrying its `HEARTH_APP_ID`), by hearth executor id. Where a process the
    /// JVM started looks the same (its environment and class name), the oldest (lowest
    /// pid) is the executor, whatever order `/proc` lists them in.
    pub fn executor_jvms(&self, app: &str) -> BTreeMap<u32, ProcInfo> {
        let mut jvms: BTreeMap<u32, ProcInfo> = BTreeMap::new();
        let found = procs::of_app(&self.masters, app).into_iter().filter(|p| {
            !p.is_guard()
                && p.argv
                    .iter()
                    .any(|a| a == "org.apache.spark.executor.CoarseGrainedExecutorBackend")
        });
        for p in found {
            let Some(id) = p.env("HEARTH_EXECUTOR_ID").and_then(|i| i.parse().ok()) else {
                continue;
            };
            if jvms.get(&id).is_none_or(|q| p.pid < q.pid) {
                jvms.insert(id, p);
            }
        }
        jvms
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // SIGTERM: `hearth local` stops its masters and workers, which stop what they run.
        let _ = self.proc.stop(Duration::from_secs(30));
    }
}

/// A `spark-submit` run in its own process group (driver JVM, Python, everything it
/// starts), killed whole on drop. stdout goes to `out`, stderr (Spark's log) to `log`.
pub struct SparkRun {
    pub proc: Proc,
    pub out: PathBuf,
    pub started: Instant,
}

impl SparkRun {
    /// `spark-submit --master MASTER --driver-class-path JAR CONF... PROGRAM ARGS...`;
    /// each conf is `key=value`.
    pub fn submit(
        dir: &Path,
        name: &str,
        master: &str,
        confs: &[&str],
        program: &Path,
        args: &[&str],
    ) -> SparkRun {
        let kit = kit();
        let mut cmd = Command::new(kit.python.parent().expect("venv bin").join("spark-submit"));
        cmd.arg("--master")
            .arg(master)
            .arg("--driver-class-path")
            .arg(&kit.jar);
        for c in confs {
            cmd.arg("--conf").arg(c);
        }
        cmd.arg(program).args(args);
        let out = dir.join(format!("{name}.out"));
        let log = dir.join(format!("{name}.log"));
        cmd.env("SPARK_HOME", &kit.spark_home)
            .env("PYSPARK_PYTHON", &kit.python)
            .env("PYSPARK_DRIVER_PYTHON", &kit.python)
            .env("SPARK_LOCAL_IP", "127.0.0.1")
            .env_remove("HEARTH_MASTERS")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("create out"))
            .stderr(std::fs::File::create(&log).expect("create log"))
            .process_group(0);
        let child = cmd.spawn().expect("run spark-submit");
        SparkRun {
            proc: Proc::from_child(name, child, log),
            out,
            started: Instant::now(),
        }
    }

    /// Waits for the driver to exit (at most `timeout`): its exit code, or a panic
    /// with the end of its log.
    pub fn wait(&mut self, timeout: Duration) -> i32 {
        let status = Wait::new(format!("{} to finish", self.proc.name), timeout)
            .every(Duration::from_millis(50))
            .until(|| self.proc.child.try_wait().ok().flatten());
        match status {
            Ok(s) => s.code().unwrap_or(-1),
            Err(e) => panic!("{e}; log:\n{}", tail(&self.log(), 60)),
        }
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn log(&self) -> String {
        self.proc.log_text()
    }

    /// Spark's own lines about failed tasks and lost executors in the driver's log.
    pub fn task_failures(&self) -> Vec<String> {
        const SIGNS: [&str; 4] = [
            "Lost task",
            "ExecutorLostFailure",
            "Lost executor",
            "TaskSetManager: task",
        ];
        self.log()
            .lines()
            .filter(|l| SIGNS.iter().any(|s| l.contains(s)))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for SparkRun {
    fn drop(&mut self) {
        // The whole group: spark-submit's JVM and the Python it started.
        // SAFETY: kill(2) on a process group we created.
        unsafe { libc::kill(-(self.proc.pid() as i32), libc::SIGKILL) };
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
