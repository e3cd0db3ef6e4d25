//! The command line: `airlock run`, `airlock config check`, and the flags
//! every command shares.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// airlock: see, attribute and govern what AI coding agents do on Azure.
#[derive(Debug, Parser)]
#[command(name = "airlock", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log filter (tracing `EnvFilter` syntax; default `info`, `warn` for
    /// the demo); RUST_LOG wins when set.
    #[arg(long, global = true)]
    pub log_level: Option<String>,
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground until SIGINT/SIGTERM.
    Run {
        /// Config file.
        #[arg(long, short, value_name = "FILE", default_value = crate::config::DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Show the capture path end to end on loopback (root; cleans up after
    /// itself, also on Ctrl-C).
    Demo {
        /// Keep the demo's audit log here (default: a new directory in /tmp).
        #[arg(long, value_name = "FILE")]
        audit: Option<PathBuf>,
    },
    /// Work with config files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Verify and read the audit trail.
    Audit {
        /// Config file (for `audit.path`).
        #[arg(long, short, global = true, value_name = "FILE", default_value = crate::config::DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Check policy files and see what they decide.
    Policy {
        /// Config file (for `policy.dir` and `[identity]`).
        #[arg(long, short, global = true, value_name = "FILE", default_value = crate::config::DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Held requests waiting for a human, and window grants (over the admin
    /// socket; who you are is what the kernel says).
    Approvals {
        /// Config file (for `[admin] socket`).
        #[arg(long, short, global = true, value_name = "FILE", default_value = crate::config::DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// The admin socket, instead of the config's.
        #[arg(long, global = true, value_name = "PATH")]
        socket: Option<PathBuf>,
        /// JSON instead of text.
        #[arg(long, global = true)]
        json: bool,
        /// Through the fleet's database (`[fleet]`, as a role in
        /// airlock_approver): requests held on every host (list, approve,
        /// deny).
        #[arg(long, global = true, conflicts_with = "socket")]
        fleet: bool,
        #[command(subcommand)]
        command: ApprovalsCommand,
    },
    /// The approvers' web page on loopback (`[console]`): held requests
    /// live, approve and deny as the user who runs it. Prints a one-time
    /// sign-in link; runs until Ctrl-C.
    Console {
        /// Config file (for `[console]` and `[admin] socket`).
        #[arg(long, short, value_name = "FILE", default_value = crate::config::DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// The fleet's database (`[fleet]`).
    Fleet {
        /// Config file (for `[fleet]`).
        #[arg(long, short, global = true, value_name = "FILE", default_value = crate::config::DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        #[command(subcommand)]
        command: FleetCommand,
    },
    /// The running daemon's state (over the admin socket): capture,
    /// listeners, CA, policy version, audit chain head, approvals.
    Status {
        #[arg(long, short, value_name = "FILE", default_value = crate::config::DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        /// Print the daemon's JSON as is.
        #[arg(long)]
        json: bool,
        /// Print the Prometheus metrics instead.
        #[arg(long, conflicts_with = "json")]
        metrics: bool,
    },
    /// The local CA that signs intercepted connections.
    Ca {
        /// Config file (for `tls.ca_dir` and `proxy.intercept`).
        #[arg(long, short, global = true, value_name = "FILE", default_value = crate::config::DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        #[command(subcommand)]
        command: CaCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// Requests held now.
    List {
        /// Print the list again every 2 s.
        #[arg(long)]
        watch: bool,
    },
    /// Everything about one held request.
    Show { id: String },
    /// Release a held request (`--for 30m`: and the same identity, rule and
    /// operation on the same resource for that long — a grant; `--scope`
    /// widens what it covers).
    Approve {
        id: String,
        #[arg(long, value_name = "DURATION")]
        r#for: Option<String>,
        /// What the grant covers: `/subscriptions/ID`, a resource group or
        /// resource id under it, or `namespace/NAME` (Kubernetes); it must
        /// contain the held request's resource. Default: that resource.
        #[arg(long, requires = "for")]
        scope: Option<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Refuse a held request (its client gets a 403).
    Deny {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// End a grant early.
    Revoke {
        grant: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Live grants.
    Grants,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Load a policy directory (default: the configured one, else the
    /// shipped policies) and list its rules; errors give file, line and
    /// reason, and exit non-zero.
    Check {
        /// Directory of `*.toml` policy files.
        dir: Option<PathBuf>,
    },
    /// Print the decision and the rule for one request.
    Explain(ExplainArgs),
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// HTTP method.
    #[arg(long, short = 'X', default_value = "GET")]
    pub method: String,
    /// Full URL, e.g. `https://management.azure.com/subscriptions/…`.
    #[arg(long)]
    pub url: String,
    /// A bearer token: identified and validated against `[identity]` as
    /// the proxy would (it is never printed).
    #[arg(long)]
    pub token: Option<String>,
    /// A whole `Authorization` header value instead (`SharedKey acct:sig`).
    #[arg(long, conflicts_with = "token")]
    pub authorization: Option<String>,
    /// The calling process's name.
    #[arg(long, default_value = "")]
    pub comm: String,
    /// The calling process's executable path.
    #[arg(long)]
    pub exe: Option<String>,
    /// The calling process's uid.
    #[arg(long, default_value_t = 0)]
    pub uid: u32,
    /// Policy directory instead of the configured one.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain (default: the configured trail, rotated files
    /// first); names the first broken record and exits non-zero.
    Verify {
        /// Files, oldest first.
        paths: Vec<PathBuf>,
        /// Also require signed checkpoints verifying with this Ed25519
        /// public key (hex, as `airlock audit pubkey` prints it).
        #[arg(long, value_name = "HEX")]
        key: Option<String>,
        /// Check the chains the host `--origin` shipped to `[fleet]`'s
        /// database instead of local files.
        #[arg(long, requires = "origin", conflicts_with = "paths")]
        fleet: bool,
        /// The host (its name, as records' `origin.host` says it).
        #[arg(long, value_name = "HOST", requires = "fleet")]
        origin: Option<String>,
    },
    /// Print the public key of `audit.checkpoint_key` (hex), for verifiers.
    Pubkey,
    /// Print the newest records, and with -f keep following.
    Tail {
        /// How many records to start with.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        #[arg(short, long)]
        follow: bool,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Print every exchange (its session, request and response records
    /// joined into one object) and every other record as one JSON line
    /// each: the whole trail, rotated files included, or the files given.
    Export {
        /// Files, oldest first.
        paths: Vec<PathBuf>,
    },
    /// Search the whole trail (rotated files included), or with --fleet
    /// every host's trail in `[fleet]`'s database.
    Search {
        #[command(flatten)]
        filter: FilterArgs,
        /// Search the fleet's database: joined exchanges of every host
        /// (with --json, one joined object per line).
        #[arg(long)]
        fleet: bool,
        /// Only records this host wrote (its name, `origin.host`).
        #[arg(long, value_name = "HOST", requires = "fleet")]
        origin: Option<String>,
    },
    /// What a CI job or a session did: operations by how they ended, what
    /// was held and who decided, what was blocked and which command tried
    /// it, secrets masked. Markdown is ready for `$GITHUB_STEP_SUMMARY`.
    Summary {
        /// From this time: RFC 3339, or a duration ago such as 45m (the
        /// job's start).
        #[arg(long)]
        since: Option<String>,
        /// Until this time (same forms).
        #[arg(long)]
        until: Option<String>,
        #[arg(long, value_enum, default_value_t = SummaryFormat::Markdown)]
        format: SummaryFormat,
    },
}

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Create or upgrade the schema, its roles (airlock_host,
    /// airlock_reader) and row-level security; run as the database's
    /// owner. Safe to run again.
    Migrate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SummaryFormat {
    Markdown,
    Json,
}

/// Filters shared by `audit tail` and `audit search`.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// From this time: RFC 3339, or a duration ago such as 24h.
    #[arg(long)]
    pub since: Option<String>,
    /// Until this time (same forms).
    #[arg(long)]
    pub until: Option<String>,
    /// Record kind: http, connection, tls_passthrough, tls_client_refused, agent.
    #[arg(long)]
    pub kind: Option<String>,
    /// Process name.
    #[arg(long)]
    pub comm: Option<String>,
    #[arg(long)]
    pub uid: Option<u32>,
    /// Host: exact name or `*.domain`.
    #[arg(long)]
    pub host: Option<String>,
    #[arg(long)]
    pub method: Option<String>,
    /// Substring of the path, e.g. a subscription id.
    #[arg(long)]
    pub path: Option<String>,
    #[arg(long)]
    pub status: Option<u16>,
    /// Who: upn, object id, app id, storage account, or GitHub actor or
    /// repository (glob, e.g. `*@contoso.com`).
    #[arg(long)]
    pub identity: Option<String>,
    /// A group the token lists (glob).
    #[arg(long)]
    pub group: Option<String>,
    /// Operation name glob, e.g. `Microsoft.Storage/*` or `k8s.pods.*`.
    #[arg(long)]
    pub operation: Option<String>,
    /// Policy decision: allow, deny or approve.
    #[arg(long)]
    pub decision: Option<String>,
    /// JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create the CA (name-constrained to `proxy.intercept`) unless it exists.
    Init {
        /// Replace an existing CA (clients must then trust the new one).
        #[arg(long)]
        force: bool,
    },
    /// Print the CA certificate (PEM).
    Export,
    /// Publish the CA and the bundle in `tls.public_dir` and add the CA to
    /// the system trust store (update-ca-certificates or update-ca-trust).
    Install,
    /// Print the environment lines, with the published files, for runtimes
    /// that ignore the system store (Node, Python/az, OpenSSL, curl).
    Env,
    /// Replace the CA: a new one mints from the next reload of the daemon
    /// (`systemctl reload airlock`) while the published files trust both,
    /// until `--finish`.
    Rotate {
        /// End the rotation: stop trusting the previous CA.
        #[arg(long)]
        finish: bool,
    },
    /// Probe each runtime on this host (curl, Python, Node, Java, .NET,
    /// Go) as a user, with exactly the lines of `ca env`: which trust
    /// airlock, and what to set for the others. Exits 1 if any does not.
    /// Needs the CA key (root).
    Check {
        /// The user to probe as (name or uid; default: the one `sudo` was
        /// run by, else the caller).
        #[arg(long)]
        user: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file and print the effective configuration.
    Check {
        /// Config file.
        #[arg(value_name = "FILE", default_value = crate::config::DEFAULT_CONFIG_PATH)]
        file: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_takes_config() {
        let cli = Cli::parse_from(["airlock", "run", "--config", "/tmp/a.toml"]);
        assert!(
            matches!(cli.command, Command::Run { config } if config == Path::new("/tmp/a.toml"))
        );
    }

    #[test]
    fn ca_commands_take_config() {
        let cli = Cli::parse_from([
            "airlock",
            "ca",
            "init",
            "--force",
            "--config",
            "/tmp/a.toml",
        ]);
        assert!(matches!(cli.command,
            Command::Ca { config, command: CaCommand::Init { force: true } } if config == Path::new("/tmp/a.toml")));
        let cli = Cli::parse_from(["airlock", "ca", "env"]);
        assert!(matches!(
            cli.command,
            Command::Ca {
                command: CaCommand::Env,
                ..
            }
        ));
    }

    #[test]
    fn console_takes_config() {
        let cli = Cli::parse_from(["airlock", "console", "-c", "/tmp/a.toml"]);
        assert!(
            matches!(cli.command, Command::Console { config } if config == Path::new("/tmp/a.toml"))
        );
    }

    #[test]
    fn config_check_defaults_to_etc() {
        let cli = Cli::parse_from(["airlock", "config", "check"]);
        assert!(matches!(cli.command,
            Command::Config(ConfigCommand::Check { file }) if file == Path::new("/etc/airlock/airlock.toml")));
    }
}
