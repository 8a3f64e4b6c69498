//! The shared `main` of every Vigil service: parse `--config`, load and validate the typed
//! config, start telemetry, bind the listeners, serve the admin port, install the signal
//! handler, call the service's `run`, and flush telemetry last.
//!
//! Tests bind `127.0.0.1:0`; the bound ports are written as JSON to `--ports-file`
//! (`VIGIL_PORTS_FILE`) so that a test harness can find them without guessing.

use crate::admin::{self, Readiness};
use crate::admission::AdmissionLayer;
use crate::config::{self, ServiceConfig};
use crate::security::ServerSecurity;
use crate::shutdown::Shutdown;
use crate::telemetry;
use clap::Parser;
use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::net::TcpListener;

#[derive(Debug, Parser)]
struct Args {
    /// TOML config file (environment variables `VIGIL_SECTION__FIELD` override it).
    #[arg(long, env = "VIGIL_CONFIG")]
    config: Option<PathBuf>,
    /// Where to write the bound ports as JSON (for test harnesses).
    #[arg(long, env = "VIGIL_PORTS_FILE")]
    ports_file: Option<PathBuf>,
}

/// What a service's `run` receives.
#[derive(Debug)]
pub struct Context {
    /// The bound gRPC listener, with the server's admission limit.
    pub grpc: GrpcListener,
    /// Register the service's metrics here; served on `/metrics`.
    pub metrics: prometheus::Registry,
    /// Set when the service is ready for traffic; cleared first on shutdown.
    pub readiness: Readiness,
    pub shutdown: Shutdown,
}

/// The bound gRPC listener, the limit on requests in flight shared by all its connections, and
/// its TLS and token check (`[server.tls]`, `[server.auth]`).
#[derive(Debug)]
pub struct GrpcListener {
    pub listener: TcpListener,
    pub admission: AdmissionLayer,
    pub security: ServerSecurity,
}

impl GrpcListener {
    /// `listener` with a limit of `max_in_flight` requests, shedding uncounted (for tests).
    pub fn new(listener: TcpListener, max_in_flight: usize) -> GrpcListener {
        GrpcListener {
            listener,
            admission: AdmissionLayer::new(max_in_flight, None),
            security: ServerSecurity::default(),
        }
    }

    /// The same listener serving with `security` (for tests).
    pub fn with_security(self, security: ServerSecurity) -> GrpcListener {
        GrpcListener { security, ..self }
    }
}

/// Runs a service to completion; the exit code reflects its outcome.
pub fn launch<C, F, Fut, E>(service: &'static str, run: F) -> ExitCode
where
    C: ServiceConfig,
    F: FnOnce(C, Context) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let args = Args::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    let cfg: C = match config::load(args.config.as_deref(), &env) {
        Ok(c) => c,
        Err(error) => {
            eprintln!("vigil-{service}: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(error) => {
            eprintln!("vigil-{service}: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let handle = match telemetry::init(service, cfg.telemetry()) {
            Ok(h) => h,
            Err(error) => {
                eprintln!("vigil-{service}: {error}");
                return ExitCode::from(2);
            }
        };
        let code = serve(service, args.ports_file, cfg, run).await;
        handle.shutdown();
        code
    })
}

async fn serve<C, F, Fut, E>(
    service: &'static str,
    ports_file: Option<PathBuf>,
    cfg: C,
    run: F,
) -> ExitCode
where
    C: ServiceConfig,
    F: FnOnce(C, Context) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let server = cfg.server().clone();
    // Certificates and tokens are read before anything binds: a bad file is a config error.
    let rejected = prometheus::IntCounter::new(
        "grpc_requests_unauthenticated_total",
        "Requests answered UNAUTHENTICATED for a missing or wrong bearer token",
    );
    let rejected = match rejected {
        Ok(c) => c,
        Err(error) => {
            tracing::error!(%error, "cannot create grpc_requests_unauthenticated_total");
            return ExitCode::FAILURE;
        }
    };
    let security = match ServerSecurity::load(
        server.tls.as_ref(),
        server.auth.as_ref(),
        Some(rejected.clone()),
    ) {
        Ok(s) => s,
        Err(error) => {
            tracing::error!(%error, "invalid server security");
            eprintln!("vigil-{service}: {error}");
            return ExitCode::from(2);
        }
    };
    let (grpc, admin_listener) = match bind(&server).await {
        Ok(l) => l,
        Err(error) => {
            tracing::error!(%error, "cannot bind listeners");
            return ExitCode::FAILURE;
        }
    };
    let grpc_port = grpc.local_addr().map(|a| a.port()).unwrap_or(0);
    let admin_port = admin_listener.local_addr().map(|a| a.port()).unwrap_or(0);
    if let Some(path) = ports_file {
        let json = serde_json::json!({ "grpc": grpc_port, "admin": admin_port }).to_string();
        let tmp = path.with_extension("tmp");
        if let Err(error) = std::fs::write(&tmp, json).and_then(|()| std::fs::rename(&tmp, &path)) {
            tracing::error!(%error, path = %path.display(), "cannot write the ports file");
            return ExitCode::FAILURE;
        }
    }
    tracing::info!(
        service,
        grpc_port,
        admin_port,
        tls = security.tls(),
        mtls = security.mtls(),
        token_auth = security.token_auth(),
        "starting"
    );
    let metrics = prometheus::Registry::new_custom(Some("vigil".into()), None).unwrap_or_default();
    if let Err(error) = metrics.register(Box::new(rejected)) {
        tracing::error!(%error, "cannot register grpc_requests_unauthenticated_total");
        return ExitCode::FAILURE;
    }
    let readiness = Readiness::default();
    let shutdown = Shutdown::new();
    shutdown.cancel_on_signal();
    let admin_stop = tokio_util::sync::CancellationToken::new();
    let admin_task = tokio::spawn(admin::serve(
        admin_listener,
        metrics.clone(),
        readiness.clone(),
        admin_stop.clone(),
    ));
    let shed = prometheus::IntCounter::new(
        "grpc_requests_shed_total",
        "Requests answered RESOURCE_EXHAUSTED because server.max_in_flight were in flight",
    )
    .and_then(|c| metrics.register(Box::new(c.clone())).map(|()| c));
    let shed = match shed {
        Ok(c) => c,
        Err(error) => {
            tracing::error!(%error, "cannot register grpc_requests_shed_total");
            return ExitCode::FAILURE;
        }
    };
    let ctx = Context {
        grpc: GrpcListener {
            listener: grpc,
            admission: AdmissionLayer::new(server.max_in_flight, Some(shed)),
            security,
        },
        metrics,
        readiness,
        shutdown: shutdown.clone(),
    };
    let result = run(cfg, ctx).await;
    // Whatever ended `run`, stop intake and give tracked tasks their deadline to drain.
    shutdown.stop_intake.cancel();
    if !shutdown
        .drain(Duration::from_secs(server.shutdown_timeout_secs))
        .await
    {
        tracing::warn!("shutdown deadline passed with tasks still running");
    }
    admin_stop.cancel();
    let _ = admin_task.await;
    match result {
        Ok(()) => {
            tracing::info!(service, "stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(service, %error, "failed");
            ExitCode::FAILURE
        }
    }
}

async fn bind(server: &crate::ServerConfig) -> std::io::Result<(TcpListener, TcpListener)> {
    Ok((
        TcpListener::bind(server.grpc_addr).await?,
        TcpListener::bind(server.admin_addr).await?,
    ))
}
