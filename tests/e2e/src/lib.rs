//! The end-to-end harness: runs Vigil's real binaries as child processes, the way
//! influxdb3's `TestServer` does. A service binds port 0, writes its bound ports to a file
//! (`VIGIL_PORTS_FILE`), and the harness waits for that file and then for `grpc.health.v1`
//! SERVING — never a blind sleep. Children are killed on `Drop`.
//!
//! The stack (Redis, the Kafka-protocol broker) is started by `scripts/test.sh`, which exports
//! `VIGIL_KAFKA__BROKERS` and `VIGIL_REDIS__URL`; without them the tests fail and say so.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Endpoints of the running stack.
#[derive(Debug, Clone)]
pub struct Stack {
    pub brokers: String,
    pub redis_url: String,
}

impl Stack {
    /// Reads the stack's endpoints from the environment set by `scripts/test.sh`.
    pub fn from_env() -> Stack {
        let get = |k: &str| {
            std::env::var(k).unwrap_or_else(|_| {
                panic!("{k} is not set: run the tests with scripts/test.sh, which starts Redis and the broker")
            })
        };
        Stack {
            brokers: get("VIGIL_KAFKA__BROKERS"),
            redis_url: get("VIGIL_REDIS__URL"),
        }
    }

    /// The environment every service gets.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("VIGIL_KAFKA__BROKERS".into(), self.brokers.clone()),
            ("VIGIL_KAFKA__TANSU_COMPAT".into(), "true".into()),
            ("VIGIL_REDIS__URL".into(), self.redis_url.clone()),
            ("VIGIL_TELEMETRY__LOG_FORMAT".into(), "json".into()),
        ]
    }
}

/// Directory of the workspace's binaries (next to this test executable's `deps/`).
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("VIGIL_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// Path of `vigil-<name>`, which must have been built (`cargo build --workspace --bins`).
pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(format!("vigil-{name}"));
    assert!(
        path.exists(),
        "{} not built: run `cargo build --workspace --bins` (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Runs a binary to completion; panics with its output on failure; returns stdout.
pub fn run_to_completion(name: &str, args: &[&str], env: &[(String, String)]) -> String {
    let out = Command::new(binary(name))
        .args(args)
        .envs(env.iter().cloned())
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "vigil-{name} {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A running service process.
#[derive(Debug)]
pub struct Service {
    pub name: String,
    child: Option<Child>,
    env: Vec<(String, String)>,
    dir: PathBuf,
    pub grpc_port: u16,
    pub admin_port: u16,
}

impl Service {
    /// Starts `vigil-<name>` on ephemeral ports with `env`; logs go to `dir/<name>.log`.
    pub fn start(name: &str, env: Vec<(String, String)>, dir: &Path) -> Service {
        let mut env = env;
        env.push(("VIGIL_SERVER__GRPC_ADDR".into(), "127.0.0.1:0".into()));
        env.push(("VIGIL_SERVER__ADMIN_ADDR".into(), "127.0.0.1:0".into()));
        let mut s = Service {
            name: name.into(),
            child: None,
            env,
            dir: dir.to_path_buf(),
            grpc_port: 0,
            admin_port: 0,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let ports = self.dir.join(format!("{}.ports.json", self.name));
        let _ = std::fs::remove_file(&ports);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.log", self.name)))
            .expect("log file");
        let child = Command::new(binary(&self.name))
            .envs(self.env.iter().cloned())
            .env("VIGIL_PORTS_FILE", &ports)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn service");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = std::fs::read_to_string(&ports) {
                let v: serde_json::Value = serde_json::from_str(&text).expect("ports json");
                self.grpc_port = v["grpc"].as_u64().expect("grpc port") as u16;
                self.admin_port = v["admin"].as_u64().expect("admin port") as u16;
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "{} exited during start-up ({status}); see {}",
                    self.name,
                    self.log_path().display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not write its ports file",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.name))
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// Waits until the service reports SERVING on grpc.health.v1.
    pub async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if self.check_serving().await {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "{} exited ({status}); see {}",
                    self.name,
                    self.log_path().display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} not healthy in time; see {}",
                self.name,
                self.log_path().display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether grpc.health.v1 reports SERVING for the whole server right now.
    pub async fn check_serving(&self) -> bool {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::health_client::HealthClient;
        let Ok(endpoint) = tonic::transport::Endpoint::from_shared(self.endpoint()) else {
            return false;
        };
        let Ok(channel) = endpoint.connect().await else {
            return false;
        };
        let request = HealthCheckRequest {
            service: String::new(),
        };
        match HealthClient::new(channel).check(request).await {
            Ok(r) => r.into_inner().status == ServingStatus::Serving as i32,
            Err(_) => false,
        }
    }

    /// The sum over labels of the Prometheus metric `name` on the admin port right now (0 when
    /// absent or unreachable). Plain HTTP/1.1 over a socket: one GET is all this needs.
    pub fn metric(&self, name: &str) -> f64 {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.admin_port)) else {
            return 0.0;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let request = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        let mut body = String::new();
        if stream.write_all(request.as_bytes()).is_err()
            || stream.read_to_string(&mut body).is_err()
        {
            return 0.0;
        }
        body.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Waits until the metric `name` reaches `at_least` (the service is past a point).
    pub async fn until_metric(&self, name: &str, at_least: f64) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.metric(name) < at_least {
            assert!(
                Instant::now() < deadline,
                "{}: {name} never reached {at_least}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no graceful shutdown, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        c.wait().map(|s| s.success()).unwrap_or(false)
    }

    /// Starts the service again on the same ports (after `kill`/`terminate`).
    pub fn restart(&mut self) {
        self.kill();
        let (g, a) = (self.grpc_port, self.admin_port);
        self.env
            .retain(|(k, _)| k != "VIGIL_SERVER__GRPC_ADDR" && k != "VIGIL_SERVER__ADMIN_ADDR");
        self.env
            .push(("VIGIL_SERVER__GRPC_ADDR".into(), format!("127.0.0.1:{g}")));
        self.env
            .push(("VIGIL_SERVER__ADMIN_ADDR".into(), format!("127.0.0.1:{a}")));
        self.spawn();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Current unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A Redis and a tansu broker of one test's own, on free ports, with their data in `dir`: for
/// fault cases that restart them, which the shared stack cannot do under the other tests.
/// Both keep their data across restarts (Redis AOF with `fsync always`, tansu sqlite).
#[derive(Debug)]
pub struct PrivateStack {
    pub stack: Stack,
    dir: PathBuf,
    redis_port: u16,
    kafka_port: u16,
    redis: Option<Child>,
    broker: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not open port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl PrivateStack {
    /// Starts both in `dir`.
    pub fn start(dir: &Path) -> PrivateStack {
        let (redis_port, kafka_port) = (free_port(), free_port());
        for d in ["redis", "tansu"] {
            std::fs::create_dir_all(dir.join(d)).expect("stack dir");
        }
        let mut s = PrivateStack {
            stack: Stack {
                brokers: format!("127.0.0.1:{kafka_port}"),
                redis_url: format!("redis://127.0.0.1:{redis_port}"),
            },
            dir: dir.to_path_buf(),
            redis_port,
            kafka_port,
            redis: None,
            broker: None,
        };
        s.start_redis();
        s.start_broker();
        s
    }

    fn log(&self, name: &str) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.log")))
            .expect("log file")
    }

    /// Starts Redis (again) on its data.
    pub fn start_redis(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.redis_port.to_string(),
            ])
            .arg("--dir")
            .arg(self.dir.join("redis"))
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .stdout(self.log("redis"))
            .stderr(self.log("redis"))
            .spawn()
            .expect("redis-server (installed by scripts/setup.sh)");
        self.redis = Some(child);
        wait_port(self.redis_port, "redis-server");
    }

    /// Starts the broker (again) on its data.
    pub fn start_broker(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.kafka_port);
        let child = Command::new("tansu")
            .current_dir(self.dir.join("tansu"))
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .stdout(self.log("tansu"))
            .stderr(self.log("tansu"))
            .spawn()
            .expect("tansu (installed by scripts/setup.sh)");
        self.broker = Some(child);
        wait_port(self.kafka_port, "tansu");
    }

    /// SIGKILLs the broker (a crash: sqlite keeps what it committed).
    pub fn kill_broker(&mut self) {
        kill(&mut self.broker);
    }

    /// [`PrivateStack::kill_broker`], and starts it again after `down`.
    pub fn restart_broker(&mut self, down: Duration) {
        self.kill_broker();
        std::thread::sleep(down);
        self.start_broker();
    }

    /// Redis's data directory (its AOF).
    pub fn redis_dir(&self) -> PathBuf {
        self.dir.join("redis")
    }

    /// SIGKILLs Redis (a crash; with `fsync always` its AOF has every acknowledged write).
    pub fn kill_redis(&mut self) {
        kill(&mut self.redis);
    }

    /// Stops Redis with `SHUTDOWN` (it flushes the AOF, as on a rolling restart).
    pub fn stop_redis(&mut self) {
        let _ = Command::new("redis-cli")
            .args(["-p", &self.redis_port.to_string(), "shutdown"])
            .output();
        if let Some(mut c) = self.redis.take() {
            let _ = c.wait();
        }
    }
}

/// SIGKILLs and reaps `child`, if running (a process already gone is not an error here).
fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for PrivateStack {
    fn drop(&mut self) {
        kill(&mut self.redis);
        kill(&mut self.broker);
    }
}
