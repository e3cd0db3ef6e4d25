//! The `airlock` binary: parse the command line, set up logging, dispatch.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use airlock::Config;
use airlock::Glob;
use airlock::Identifier;
use airlock::PolicySource;
use airlock::cli::{
    ApprovalsCommand, AuditCommand, CaCommand, Cli, Command, ConfigCommand, ExplainArgs,
    FilterArgs, FleetCommand, LogArgs, LogFormat, PolicyCommand, SummaryFormat,
};
use airlock::query::{self, Filter};
use airlock::{AdminClient, approvals_table, grants_table, held_details};
use airlock::{CaFiles, CertificateAuthority, PublicFiles};
use airlock::{Question, explain};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = matches!(cli.command, Command::Demo { .. });
    init_logging(&cli.log, if quiet { "error" } else { "info" });
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
        Command::Run { config: path } => {
            let config = load(&path)?;
            // Every thread the runtime starts keeps only what the running
            // proxy needs; this one, which attaches, drops last (seal).
            airlock::arm_confinement(config.audit.group.is_some())?;
            runtime()?.block_on(async {
                let app = airlock::build(config).await?;
                airlock::seal_confinement()?;
                // Without a file (built-in defaults) SIGHUP reloads policies only.
                let app = if path.exists() {
                    app.with_config_file(path)
                } else {
                    app
                };
                app.run(shutdown_signal()).await?;
                anyhow::Ok(())
            })
        }
        Command::Demo { audit } => runtime()?.block_on(async {
            airlock::run_demo(audit).await?;
            anyhow::Ok(())
        }),
        Command::Ca { config, command } => ca(&load(&config)?, command),
        Command::Console { config } => {
            let config = load(&config)?;
            runtime()?.block_on(async {
                let console = airlock::Console::bind(&config).await?;
                if let Some(w) = console.warning() {
                    tracing::warn!("{w}");
                }
                if console.signs_in_with_issuer() {
                    println!(
                        "airlock console (fleet): approvers sign in at {}\n(Ctrl-C stops the console)",
                        console.login_url()
                    );
                } else {
                    // On stdout, as Jupyter prints its link: the terminal
                    // of the user who started it, nobody else's.
                    println!(
                        "airlock console: sign in at {}\n(the link works once, for 5 minutes; Ctrl-C stops the console)",
                        console.login_url()
                    );
                }
                console.run(shutdown_signal()).await;
                anyhow::Ok(())
            })
        }
        Command::Approvals {
            config,
            json,
            fleet: true,
            command,
            ..
        } => runtime()?.block_on(fleet_approvals(&load(&config)?, json, command)),
        Command::Approvals {
            config,
            socket,
            json,
            command,
            ..
        } => {
            let socket = socket.map_or_else(|| load(&config).map(|c| c.admin.socket), Ok)?;
            runtime()?.block_on(approvals(AdminClient::new(socket), json, command))
        }
        Command::Status {
            config,
            socket,
            json,
            metrics,
        } => {
            let socket = socket.map_or_else(|| load(&config).map(|c| c.admin.socket), Ok)?;
            runtime()?.block_on(async {
                let client = AdminClient::new(socket);
                if metrics {
                    print!("{}", client.metrics().await?);
                    return anyhow::Ok(());
                }
                let status = client.status().await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&status)?);
                } else {
                    print!("{}", airlock::render_status(&status));
                }
                anyhow::Ok(())
            })
        }
        Command::Policy {
            command: PolicyCommand::Check { dir: Some(dir) },
            ..
        } => policy_check(&PolicySource::Dir(dir)),
        Command::Policy {
            config,
            command: PolicyCommand::Check { dir: None },
        } => policy_check(&PolicySource::configured(&load(&config)?.policy)),
        Command::Policy {
            config,
            command: PolicyCommand::Explain(args),
        } => policy_explain(&load(&config)?, args),
        // Verifying named files needs no config (an auditor's machine).
        Command::Audit {
            command: AuditCommand::Verify { paths, key, .. },
            ..
        } if !paths.is_empty() => verify(&paths, key.as_deref()),
        Command::Fleet {
            config,
            command: FleetCommand::Migrate,
        } => {
            let config = load(&config)?;
            let (was, now) = runtime()?.block_on(airlock::fleet_migrate(&config.fleet))?;
            if was == now {
                println!("the fleet's schema is at version {now}: nothing to do");
            } else {
                println!("the fleet's schema is at version {now} (was {was})");
            }
            Ok(())
        }
        Command::Audit { config, command } => audit(&load(&config)?, command),
        Command::Config(ConfigCommand::Check { file }) => {
            // As `run` does: the default path may be absent (a fresh install).
            let config = load(&file)?;
            println!("# {}: OK; effective configuration:", file.display());
            print!("{}", config.to_toml());
            Ok(())
        }
    }
}

async fn approvals(
    client: AdminClient,
    json: bool,
    command: ApprovalsCommand,
) -> anyhow::Result<()> {
    let print = |v: &serde_json::Value, text: String| {
        if json {
            println!("{v}");
        } else {
            print!("{text}");
        }
    };
    match command {
        ApprovalsCommand::List { watch } => {
            return list_held(json, watch, || async { Ok(client.list().await?) }).await;
        }
        ApprovalsCommand::Show { id } => {
            let v = client.show(&id).await?;
            print(&v, held_details(&v));
        }
        ApprovalsCommand::Approve {
            id,
            r#for,
            scope,
            reason,
        } => {
            let v = client
                .approve(&id, r#for.as_deref(), scope.as_deref(), reason.as_deref())
                .await?;
            print(&v, format!("{id}: approved\n"));
        }
        ApprovalsCommand::Deny { id, reason } => {
            let v = client.deny(&id, &reason).await?;
            print(&v, format!("{id}: denied\n"));
        }
        ApprovalsCommand::Revoke { grant, reason } => {
            let v = client.revoke(&grant, reason.as_deref()).await?;
            print(&v, format!("{grant}: revoked\n"));
        }
        ApprovalsCommand::Grants => {
            let grants = client.grants().await?;
            print(
                &serde_json::Value::from(grants.clone()),
                grants_table(&grants),
            );
        }
    }
    Ok(())
}

/// Prints the held requests `fetch` gives, and with `watch` again every
/// 2 s.
async fn list_held<F, Fut>(json: bool, watch: bool, fetch: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Vec<serde_json::Value>>>,
{
    loop {
        let held = fetch().await?;
        if json {
            println!("{}", serde_json::Value::from(held));
        } else {
            print!("{}", approvals_table(&held));
        }
        if !watch {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        println!();
    }
}

/// `approvals … --fleet`: the held requests of every host, decided
/// through the fleet's database.
async fn fleet_approvals(
    config: &Config,
    json: bool,
    command: ApprovalsCommand,
) -> anyhow::Result<()> {
    let decide = |approve, window, scope, reason| airlock::FleetDecide {
        approve,
        window,
        scope,
        reason,
        oneself: Vec::new(),
    };
    let (id, d) = match command {
        ApprovalsCommand::List { watch } => {
            return list_held(json, watch, || async {
                Ok(airlock::fleet_held(&config.fleet).await?)
            })
            .await;
        }
        ApprovalsCommand::Approve {
            id,
            r#for,
            scope,
            reason,
        } => {
            let window = r#for
                .map(|w| humantime::parse_duration(&w))
                .transpose()
                .context("--for")?;
            (id, decide(true, window, scope, reason))
        }
        ApprovalsCommand::Deny { id, reason } => (id, decide(false, None, None, Some(reason))),
        ApprovalsCommand::Show { .. }
        | ApprovalsCommand::Revoke { .. }
        | ApprovalsCommand::Grants => {
            anyhow::bail!(
                "with --fleet: list, approve and deny (show, grants and revoke are per host, over its admin socket)"
            )
        }
    };
    let v = airlock::fleet_decide(&config.fleet, &id, d).await?;
    if json {
        println!("{v}");
    } else {
        let text = |k: &str| v[k].as_str().unwrap_or("?").to_owned();
        let (decision, host) = (text("decision"), text("host"));
        match v["state"].as_str() {
            Some("held") => println!(
                "{id}: {decision} recorded; {host} has not answered yet (it applies the decision when it hears of it, unless the hold ends first)"
            ),
            Some(state) => println!("{id}: {state} on {host}"),
            None => println!("{v}"),
        }
    }
    Ok(())
}

fn policy_check(source: &PolicySource) -> anyhow::Result<()> {
    let policy = source.load()?;
    let name = match source {
        PolicySource::Embedded => "built-in policies".to_owned(),
        PolicySource::Dir(d) => d.display().to_string(),
    };
    println!("{name}: OK, {} rules", policy.rules().len());
    for r in policy.rules() {
        println!("  {:<8} {:<32} {}", r.action.as_str(), r.name, r.origin);
    }
    println!(
        "  {:<8} {:<32} (default)",
        policy.default_action().as_str(),
        "-"
    );
    Ok(())
}

fn policy_explain(config: &Config, a: ExplainArgs) -> anyhow::Result<()> {
    let source = a.dir.clone().map_or_else(
        || PolicySource::configured(&config.policy),
        PolicySource::Dir,
    );
    let policy = source.load()?;
    let authorization = a
        .authorization
        .or_else(|| a.token.map(|t| format!("Bearer {t}")));
    let process = airlock::ProcessInfo {
        comm: a.comm,
        exe: a.exe,
        uid: a.uid,
        ..Default::default()
    };
    let question = Question {
        method: &a.method,
        url: &a.url,
        authorization,
        process,
    };
    let explanation = runtime()?.block_on(async {
        let tls = std::sync::Arc::new(airlock::upstream_tls(config)?);
        let identifier = Identifier::new(&config.identity, tls, Default::default());
        anyhow::Ok(explain(question, &policy, &identifier).await?)
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&explanation)?);
    } else {
        println!("{explanation}");
    }
    Ok(())
}

fn audit(config: &Config, command: AuditCommand) -> anyhow::Result<()> {
    let trail = airlock::trail(&config.audit.path);
    match command {
        AuditCommand::Verify {
            key,
            fleet: true,
            origin: Some(origin),
            ..
        } => runtime()?.block_on(fleet_verify(config, &origin, key.as_deref())),
        AuditCommand::Verify { paths, key, .. } => {
            let paths = if paths.is_empty() { trail } else { paths };
            anyhow::ensure!(
                !paths.is_empty(),
                "no audit files at {}",
                config.audit.path.display()
            );
            verify(&paths, key.as_deref())
        }
        AuditCommand::Pubkey => {
            let path = config
                .audit
                .checkpoint_key
                .as_deref()
                .context("audit.checkpoint_key is not set: checkpoints are off")?;
            println!("{}", airlock::checkpoint_public_key(path)?);
            Ok(())
        }
        AuditCommand::Export { paths } => {
            use std::io::Write;
            let paths = if paths.is_empty() { trail } else { paths };
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let written = query::each_joined(&paths, |j| {
                serde_json::to_writer(&mut out, &j.record)?;
                out.write_all(b"\n")
            })
            .and_then(|()| out.flush());
            match written {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                r => Ok(r?),
            }
        }
        AuditCommand::Search {
            filter,
            fleet: true,
            origin,
        } => {
            let (filter, json) = filter_from(filter)?;
            runtime()?.block_on(fleet_search(config, &filter, origin.as_deref(), json))
        }
        AuditCommand::Search { filter, .. } => {
            let (filter, json) = filter_from(filter)?;
            print_records(&trail, &filter, json, None)
        }
        AuditCommand::Summary {
            since,
            until,
            format,
        } => {
            anyhow::ensure!(
                !trail.is_empty(),
                "no audit files at {}",
                config.audit.path.display()
            );
            let window = Filter {
                since: time_arg(since)?,
                until: time_arg(until)?,
                ..Filter::default()
            };
            let mut summary = airlock::Summary::default();
            query::each_joined(&trail, |j| {
                if window.matches(&j.record) {
                    summary.add(&j.record);
                }
                Ok(())
            })?;
            match format {
                SummaryFormat::Markdown => print!("{}", summary.markdown()),
                SummaryFormat::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
            }
            Ok(())
        }
        AuditCommand::Tail {
            lines,
            follow,
            filter,
        } => {
            let (filter, json) = filter_from(filter)?;
            print_records(&trail, &filter, json, Some(lines))?;
            if follow {
                follow_file(&config.audit.path, &filter, json)?;
            }
            Ok(())
        }
    }
}

/// `audit search --fleet`: table rows headed by the host each came from,
/// or with `json` the joined objects.
async fn fleet_search(
    config: &Config,
    filter: &Filter,
    origin: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failed = None;
    if !json {
        writeln!(out, "{:<20} {}", "HOST", query::HEADER)?;
    }
    airlock::fleet_search(&config.fleet, filter, origin, |r| {
        let written = if json {
            serde_json::to_writer(&mut out, r)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
        } else {
            let host = r["origin"]["host"].as_str().unwrap_or("-");
            writeln!(out, "{host:<20} {}", query::row(r))
        };
        failed = written.err();
        failed.is_none()
    })
    .await?;
    match failed.map_or_else(|| out.flush(), Err) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// `audit verify --fleet --origin HOST`: each chain the host shipped.
async fn fleet_verify(config: &Config, origin: &str, key: Option<&str>) -> anyhow::Result<()> {
    let trails = airlock::fleet_verify(&config.fleet, origin, key).await?;
    anyhow::ensure!(
        !trails.is_empty(),
        "the fleet's database holds no trail from {origin}"
    );
    let mut broken = 0;
    for t in &trails {
        let breaks = match t.breaks_recorded {
            0 => String::new(),
            n => format!("; {n} chain break(s) were found in the host's own file as it shipped"),
        };
        match &t.result {
            Ok(v) => println!(
                "OK: trail {} of {origin} (shipped by role {}): {} records through seq {}, chain intact; head {}{}{breaks}",
                t.trail,
                t.owner,
                v.records,
                t.shipped_seq,
                v.head.as_deref().unwrap_or_default(),
                match (key, v.checkpoints) {
                    (Some(_), n) => format!("; {n} signed checkpoint(s) verified"),
                    (None, _) => String::new(),
                },
            ),
            Err(e) => {
                broken += 1;
                println!(
                    "BROKEN: trail {} of {origin} (shipped by role {}): {e}{breaks}",
                    t.trail, t.owner
                );
            }
        }
    }
    anyhow::ensure!(
        broken == 0,
        "{broken} of {} trail(s) do not verify",
        trails.len()
    );
    Ok(())
}

fn verify(paths: &[std::path::PathBuf], key: Option<&str>) -> anyhow::Result<()> {
    let v = airlock::verify_signed(paths, key)?;
    if key.is_some() {
        println!("{} signed checkpoint(s) verified", v.checkpoints);
        if let Some(seq) = v.unsigned_after {
            println!(
                "warning: records after seq {seq} are chained but no signed checkpoint covers them"
            );
        }
    }
    println!(
        "OK: {} records in {} file(s), chain intact; head {}",
        v.records,
        v.files,
        v.head.unwrap_or_default()
    );
    match v.starts_after {
        Some((seq, Some(at))) => println!(
            "the chain starts at seq {seq}: older files were removed by audit.retain_bytes (retention record seq {at})"
        ),
        Some((seq, None)) => println!(
            "note: the chain starts at seq {seq}; no retention record in these files explains the records before it (a segment?)"
        ),
        None => {}
    }
    Ok(())
}

/// `--since`/`--until` as given, read.
fn time_arg(s: Option<String>) -> anyhow::Result<Option<std::time::SystemTime>> {
    s.map(|s| query::parse_time(&s))
        .transpose()
        .map_err(anyhow::Error::msg)
}

fn filter_from(a: FilterArgs) -> anyhow::Result<(Filter, bool)> {
    let host = a
        .host
        .map(|h| airlock::HostPattern::parse(&h))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    Ok((
        Filter {
            since: time_arg(a.since)?,
            until: time_arg(a.until)?,
            kind: a.kind,
            comm: a.comm,
            uid: a.uid,
            host,
            method: a.method,
            path: a.path,
            status: a.status,
            identity: a.identity.map(|g| Glob::new(&g, true)),
            group: a.group.map(|g| Glob::new(&g, true)),
            operation: a.operation.map(|g| Glob::new(&g, true)),
            decision: a.decision,
        },
        a.json,
    ))
}

/// Prints the matching exchanges and records of the trail as they are
/// read, or with `last`, only the last that many: as table rows, or with
/// `json` as the raw records they are made of (a session's once).
fn print_records(
    trail: &[std::path::PathBuf],
    filter: &Filter,
    json: bool,
    last: Option<usize>,
) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut shown = RawShown::default();
    let mut kept = std::collections::VecDeque::new();
    let printed = (|| {
        if !json {
            writeln!(out, "{}", query::HEADER)?;
        }
        query::each_joined(trail, |joined| {
            if !filter.matches(&joined.record) {
                return Ok(());
            }
            match last {
                None => shown.show(&mut out, &joined, json),
                Some(n) => {
                    if kept.len() == n {
                        kept.pop_front();
                    }
                    if n > 0 {
                        kept.push_back(joined);
                    }
                    Ok(())
                }
            }
        })?;
        for joined in &kept {
            shown.show(&mut out, joined, json)?;
        }
        out.flush()
    })();
    match printed {
        // A reader that has seen enough (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// Prints joined items; as raw records, each session line once (the most
/// recent sessions remembered: one printed long ago is printed again).
struct RawShown(lru::LruCache<String, ()>);

impl Default for RawShown {
    fn default() -> Self {
        Self(lru::LruCache::new(
            std::num::NonZeroUsize::new(100_000).expect("non-zero"),
        ))
    }
}

impl RawShown {
    fn show(
        &mut self,
        out: &mut impl std::io::Write,
        joined: &query::Joined,
        json: bool,
    ) -> std::io::Result<()> {
        if !json {
            return writeln!(out, "{}", query::row(&joined.record));
        }
        if let Some((id, line)) = &joined.session
            && self.0.put(id.clone(), ()).is_none()
        {
            writeln!(out, "{line}")?;
        }
        joined.lines.iter().try_for_each(|l| writeln!(out, "{l}"))
    }
}

/// Follows the current file as it grows, reopening it after rotation.
fn follow_file(path: &std::path::Path, filter: &Filter, json: bool) -> anyhow::Result<()> {
    use std::io::{BufRead, Seek};
    let open = || -> anyhow::Result<std::io::BufReader<std::fs::File>> {
        let mut f =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        f.seek(std::io::SeekFrom::End(0))?;
        Ok(std::io::BufReader::new(f))
    };
    let mut reader = open()?;
    let mut out = std::io::stdout();
    let (mut joiner, mut shown) = (query::Joiner::default(), RawShown::default());
    // Bytes, not a String: the read can end inside a character still being
    // written.
    let mut line = Vec::new();
    loop {
        // A partial line stays in `line` until its newline arrives.
        if reader.read_until(b'\n', &mut line)? == 0 || !line.ends_with(b"\n") {
            std::thread::sleep(std::time::Duration::from_millis(250));
            let rotated = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
                < reader.get_ref().stream_position().unwrap_or(0);
            if rotated {
                reader = std::io::BufReader::new(std::fs::File::open(path)?);
                line.clear();
            }
            continue;
        }
        let text = String::from_utf8_lossy(line.trim_ascii_end()).into_owned();
        if let Ok(record) = serde_json::from_str::<serde_json::Value>(&text)
            && let Some(joined) = joiner.push(&text, record)
            && filter.matches(&joined.record)
        {
            match shown.show(&mut out, &joined, json) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                r => r?,
            }
        }
        line.clear();
    }
}

fn ca(config: &Config, command: CaCommand) -> anyhow::Result<()> {
    let dir = &config.tls.ca_dir;
    let public = &config.tls.public_dir;
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
            println!(
                "published in {}",
                airlock::publish(public, &ca)?.dir.display()
            );
            let uncovered = ca.uncovered(&config.intercept());
            if !uncovered.is_empty() {
                println!(
                    "warning: not covered by its name constraints: {} (use --force, or `airlock ca rotate`)",
                    uncovered.join(", ")
                );
            }
        }
        CaCommand::Export => print!("{}", CertificateAuthority::load(dir)?.cert_pem()),
        CaCommand::Install => {
            let ca = CertificateAuthority::load(dir)?;
            let files = airlock::publish(public, &ca)?;
            println!("{}", airlock::install_system(&files)?);
        }
        // Only paths: the developer who runs it cannot read the CA itself.
        CaCommand::Env => print!("{}", airlock::runtime_env(&PublicFiles::new(public))),
        CaCommand::Check { user } => ca_check(config, user)?,
        CaCommand::Rotate { finish } => {
            let ca = if finish {
                CertificateAuthority::finish_rotation(dir)?
            } else {
                CertificateAuthority::rotate(dir, &config.intercept())?
            };
            let files = airlock::publish(public, &ca)?;
            if finish {
                println!(
                    "rotation finished: only {} is trusted now ({})",
                    ca.fingerprint(),
                    files.cert().display()
                );
            } else {
                println!("new CA: {}", ca.fingerprint());
                println!(
                    "{} and {} trust the new and the previous CA until `airlock ca rotate --finish`",
                    files.cert().display(),
                    files.bundle().display()
                );
                println!(
                    "next: `systemctl reload airlock` (the daemon mints with the new CA), `airlock ca install` where the system store is used, then --finish once clients have restarted"
                );
            }
        }
    }
    Ok(())
}

/// `airlock ca check`: the table, and exit 1 if a runtime refuses.
fn ca_check(config: &Config, user: Option<String>) -> anyhow::Result<()> {
    let ca = CertificateAuthority::load(&config.tls.ca_dir)
        .context("the probe server needs the CA key: run as root")?;
    let user = match user.or_else(|| std::env::var("SUDO_USER").ok()) {
        Some(u) => u,
        None => String::from_utf8(std::process::Command::new("id").arg("-un").output()?.stdout)?
            .trim()
            .to_owned(),
    };
    let user = airlock::ProbeUser::resolve(&user)?;
    let public = PublicFiles::new(&config.tls.public_dir);
    let (name, probes) = runtime()?.block_on(airlock::check_runtimes(
        ca,
        &config.intercept(),
        &public,
        &user,
    ))?;
    println!(
        "as {} (uid {}), with only the lines of `airlock ca env`, against a loopback server presenting a certificate airlock's CA signed for {name}:\n",
        user.name, user.uid
    );
    let mut refusing = 0;
    for p in &probes {
        let version: String = p
            .version
            .as_deref()
            .unwrap_or("-")
            .chars()
            .take(28)
            .collect();
        let said = match &p.outcome {
            airlock::ProbeOutcome::Trusts => "trusts airlock".to_owned(),
            airlock::ProbeOutcome::NotInstalled => "not installed".to_owned(),
            airlock::ProbeOutcome::NotProbed(what) => format!("not probed; {what}"),
            airlock::ProbeOutcome::Refuses { why, fix } => {
                refusing += 1;
                format!(
                    "DOES NOT TRUST airlock ({why})\n{:<20} {:<28} set: {fix}",
                    "", ""
                )
            }
        };
        println!("{:<20} {version:<28} {said}", p.runtime);
    }
    if refusing > 0 {
        anyhow::bail!(
            "{refusing} runtime(s) do not trust airlock's CA as {}",
            user.name
        );
    }
    Ok(())
}

/// The config at `path`; the embedded defaults when `path` is the default
/// location and nothing is there (a fresh install), said in the log. A file
/// named explicitly must exist.
fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    if path == std::path::Path::new(airlock::DEFAULT_CONFIG_PATH) && !path.exists() {
        tracing::warn!(path = %path.display(), "no config file: using the built-in defaults");
        return Ok(Config::default());
    }
    Ok(Config::load(path)?)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("airlock")
        .on_thread_start(airlock::enter_thread)
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
    // rustls warns once per handshake about clients that put an IP in
    // SNI (wrk does): a client must not be able to flood airlock's log.
    let level = format!(
        "{},rustls::msgs::handshake=error",
        args.log_level.as_deref().unwrap_or(default_level)
    );
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let writer = airlock::LogWriter::stderr();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(writer.ansi())
        .with_writer(writer);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
