//! The `airlock` binary: parse the command line, set up logging, dispatch.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use airlock::cli::{CaCommand, Cli, Command, ConfigCommand, LogArgs, LogFormat};
use airlock::config::Config;
use airlock::tls::{CaFiles, CertificateAuthority};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = matches!(cli.command, Command::Demo { .. });
    init_logging(&cli.log, if quiet { "warn" } else { "info" });
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("airlock: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run { config } => {
            let config = Config::load(&config)?;
            runtime()?.block_on(async {
                let app = airlock::app::build(config).await?;
                app.run(shutdown_signal()).await?;
                anyhow::Ok(())
            })
        }
        Command::Demo { audit } => runtime()?.block_on(async {
            airlock::demo::run(audit).await?;
            anyhow::Ok(())
        }),
        Command::Ca { config, command } => ca(&Config::load(&config)?, command),
        Command::Config(ConfigCommand::Check { file }) => {
            let config = Config::load(&file)?;
            println!("# {}: OK; effective configuration:", file.display());
            print!("{}", config.to_toml());
            Ok(())
        }
    }
}

fn ca(config: &Config, command: CaCommand) -> anyhow::Result<()> {
    let dir = &config.tls.ca_dir;
    match command {
        CaCommand::Init { force } => {
            let exists = CaFiles::new(dir).key().exists();
            let ca = if exists && !force {
                CertificateAuthority::load(dir)?
            } else {
                CertificateAuthority::create(dir, &config.intercept())?
            };
            let verb = if exists && !force {
                "exists"
            } else {
                "created"
            };
            println!("CA {verb}: {}", ca.files().cert().display());
            println!("SHA-256 fingerprint: {}", ca.fingerprint());
            let uncovered = ca.uncovered(&config.intercept());
            if !uncovered.is_empty() {
                println!(
                    "warning: not covered by its name constraints: {} (use --force)",
                    uncovered.join(", ")
                );
            }
        }
        CaCommand::Export => print!("{}", CertificateAuthority::load(dir)?.cert_pem()),
        CaCommand::Install => {
            let ca = CertificateAuthority::load(dir)?;
            println!("{}", airlock::tls::install_system(ca.files())?);
        }
        CaCommand::Env => {
            let ca = CertificateAuthority::load(dir)?;
            print!("{}", airlock::tls::runtime_env(ca.files()));
        }
    }
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("airlock")
        .build()
        .context("starting the async runtime")
}

/// Resolves on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot install signal handlers; stop airlock with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}

fn init_logging(args: &LogArgs, default_level: &str) {
    let level = args.log_level.as_deref().unwrap_or(default_level);
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
