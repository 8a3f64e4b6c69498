//! The end-to-end harness: runs Vigil's real binaries as child processes, the way
//! influxdb3's `TestServer` does. A service binds port 0, writes its bound ports to a file
//! (`VIGIL_PORTS_FILE`), and the harness waits for that file and then for `grpc.health.v1`
//! SERVING — never a blind sleep. Children are killed on `Drop`.
//!
//! The stack (Redis, the Kafka-protocol broker) is started by `scripts/test.sh`, which exports
//! `VIGIL_KAFKA__BROKERS` and `VIGIL_REDIS__URL`; without them the tests fail and say so.

use service_runtime::security::ClientSecurity;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Endpoints of the running stack.
#[derive(Debug, Clone)]
pub struct Stack {
    pub brokers: String,
    pub redis_url: String,
    /// More environment for every service: the credentials of a secured stack.
    pub credentials: Vec<(String, String)>,
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
            credentials: Vec::new(),
        }
    }

    /// The environment every service gets.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("VIGIL_KAFKA__BROKERS".into(), self.brokers.clone()),
            ("VIGIL_KAFKA__TANSU_COMPAT".into(), "true".into()),
            ("VIGIL_REDIS__URL".into(), self.redis_url.clone()),
            ("VIGIL_TELEMETRY__LOG_FORMAT".into(), "json".into()),
        ];
        env.extend(self.credentials.iter().cloned());
        env
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
    /// How the harness reaches it: TLS (then the endpoint is `https://localhost:…`) and token.
    client: ClientSecurity,
}

impl Service {
    /// Starts `vigil-<name>` on ephemeral ports with `env`; logs go to `dir/<name>.log`.
    pub fn start(name: &str, env: Vec<(String, String)>, dir: &Path) -> Service {
        Service::start_secured(name, env, dir, ClientSecurity::default())
    }

    /// [`Service::start`] for a service whose `env` turns on TLS or tokens; `client` is how the
    /// harness's own health checks reach it.
    pub fn start_secured(
        name: &str,
        env: Vec<(String, String)>,
        dir: &Path,
        client: ClientSecurity,
    ) -> Service {
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
            client,
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

    /// The running process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the service is running").id()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.name))
    }

    /// `http://127.0.0.1:<port>`, or `https://localhost:<port>` when the harness reaches it over
    /// TLS (the name its test certificate carries).
    pub fn endpoint(&self) -> String {
        if self.client.ca_file.is_some() {
            format!("https://localhost:{}", self.grpc_port)
        } else {
            format!("http://127.0.0.1:{}", self.grpc_port)
        }
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
        // A harness whose own TLS settings are wrong is a broken test, not an unhealthy service.
        let endpoint = self
            .client
            .endpoint("e2e", &self.endpoint())
            .unwrap_or_else(|e| panic!("{}: the harness's client settings: {e}", self.name));
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
    /// The Redis ACL user and password of a secured stack (`default` is then off).
    redis_acl: Option<(String, String)>,
    /// Whether the broker requires SASL.
    authentication: bool,
}

/// The user a secured stack's services authenticate as, to Redis and to the broker.
pub const STACK_USER: &str = "vigil";

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
        PrivateStack::start_with(dir, false)
    }

    /// Starts both in `dir` with authentication required: Redis allows only the ACL user
    /// [`STACK_USER`] (`default` off), the broker only SASL SCRAM-SHA-512 as that user. The
    /// passwords are in `dir/secrets/{redis,kafka}.password`; [`Stack::credentials`] carries
    /// the `[redis]` and `[kafka.security]` settings that use them.
    pub fn start_secured(dir: &Path) -> PrivateStack {
        PrivateStack::start_with(dir, true)
    }

    fn start_with(dir: &Path, secured: bool) -> PrivateStack {
        let (redis_port, kafka_port) = (free_port(), free_port());
        for d in ["redis", "tansu"] {
            std::fs::create_dir_all(dir.join(d)).expect("stack dir");
        }
        let mut s = PrivateStack {
            stack: Stack {
                brokers: format!("127.0.0.1:{kafka_port}"),
                redis_url: format!("redis://127.0.0.1:{redis_port}"),
                credentials: Vec::new(),
            },
            dir: dir.to_path_buf(),
            redis_port,
            kafka_port,
            redis: None,
            broker: None,
            redis_acl: None,
            authentication: false,
        };
        if secured {
            s.secure();
        }
        s.start_redis();
        s.start_broker();
        s
    }

    /// Writes the passwords, creates the broker's SCRAM user (on a broker started for that
    /// without authentication, on the same store: tansu keeps users there) and sets the
    /// services' credentials.
    fn secure(&mut self) {
        let secrets = self.dir.join("secrets");
        std::fs::create_dir_all(&secrets).expect("secrets dir");
        let (redis_pw, kafka_pw) = (format!("redis-{}", now_ms()), format!("kafka-{}", now_ms()));
        let (redis_file, kafka_file) = (
            secrets.join("redis.password"),
            secrets.join("kafka.password"),
        );
        std::fs::write(&redis_file, format!("{redis_pw}\n")).expect("redis password");
        std::fs::write(&kafka_file, format!("{kafka_pw}\n")).expect("kafka password");
        self.start_broker();
        let out = Command::new("tansu")
            .args(["user", "create", STACK_USER, &kafka_pw])
            .args(["--broker", &format!("tcp://127.0.0.1:{}", self.kafka_port)])
            .args(["--mechanism", "scram512"])
            .output()
            .expect("tansu user create");
        assert!(out.status.success(), "tansu user create: {out:?}");
        self.kill_broker();
        self.redis_acl = Some((STACK_USER.to_owned(), redis_pw));
        self.authentication = true;
        let path = |p: &Path| p.display().to_string();
        self.stack.credentials = vec![
            ("VIGIL_REDIS__USERNAME".into(), STACK_USER.into()),
            ("VIGIL_REDIS__PASSWORD_FILE".into(), path(&redis_file)),
            (
                "VIGIL_KAFKA__SECURITY__PROTOCOL".into(),
                "sasl_plaintext".into(),
            ),
            (
                "VIGIL_KAFKA__SECURITY__SASL_MECHANISM".into(),
                "SCRAM-SHA-512".into(),
            ),
            ("VIGIL_KAFKA__SECURITY__USERNAME".into(), STACK_USER.into()),
            (
                "VIGIL_KAFKA__SECURITY__PASSWORD_FILE".into(),
                path(&kafka_file),
            ),
        ];
    }

    /// The file holding the broker password of a secured stack.
    pub fn kafka_password_file(&self) -> PathBuf {
        self.dir.join("secrets").join("kafka.password")
    }

    /// The file holding the Redis password of a secured stack.
    pub fn redis_password_file(&self) -> PathBuf {
        self.dir.join("secrets").join("redis.password")
    }

    fn log(&self, name: &str) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.log")))
            .expect("log file")
    }

    /// The ACL file of a secured stack's Redis: its user with every right, `default` off.
    fn redis_acl_file(&self) -> Option<PathBuf> {
        let (user, pw) = self.redis_acl.as_ref()?;
        let file = self.dir.join("secrets").join("users.acl");
        std::fs::write(
            &file,
            format!("user {user} on >{pw} ~* &* +@all\nuser default off\n"),
        )
        .expect("redis ACL file");
        Some(file)
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
            .args(
                self.redis_acl_file()
                    .iter()
                    .flat_map(|f| ["--aclfile".to_owned(), f.display().to_string()]),
            )
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
            .args(self.authentication.then_some("--authentication"))
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
