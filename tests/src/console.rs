//! `airlock console` as the tests run it: the real binary, as root or as
//! another user, with a config naming a daemon's admin socket; the link
//! it prints; and what its page says after a decision.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::daemon::{airlock_bin, free_port};
use crate::{Browser, Running, Talking, WAIT};

/// `airlock console` running, and the link it printed (single-host: the
/// one-time link; fleet mode: its `/login`).
#[derive(Debug)]
pub struct Console {
    _process: Talking,
    pub login: String,
    pub origin: String,
}

/// Starts `airlock console --config FILE`, as `uid` when given.
pub async fn start(config: &Path, uid: Option<u32>) -> Console {
    let mut cmd = match uid {
        Some(uid) => {
            let mut c = tokio::process::Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={uid}"))
                .arg("--clear-groups")
                .arg(airlock_bin());
            c
        }
        None => tokio::process::Command::new(airlock_bin()),
    };
    cmd.arg("console")
        .arg("--config")
        .arg(config)
        .stdin(std::process::Stdio::null());
    let mut process = Talking::spawn(cmd);
    loop {
        let line = process.line().await;
        assert!(!line.is_empty(), "airlock console ended without a link");
        if let Some(login) = line
            .split_whitespace()
            .find(|w| w.starts_with("http") && w.contains("/login"))
        {
            let origin = login.split("/login").next().unwrap().to_owned();
            return Console {
                login: login.to_owned(),
                origin,
                _process: process,
            };
        }
    }
}

/// What the page says of decision `id`, once the page after the decision
/// is shown (the one before may still show an earlier outcome).
pub async fn outcome(browser: &Browser, id: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(flash) = browser.find("#flash").await
            && let Ok(text) = browser.text(&flash).await
            && text.contains(id)
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no outcome for {id}: {}",
            browser.page_text().await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Decides request `id` on the page open in `browser` as an approver
/// does: types `fields` (name, text) into the card's `form` (`approve` or
/// `deny`), clicks its button, and returns what the page then says of it.
pub async fn decide(browser: &Browser, id: &str, form: &str, fields: &[(&str, &str)]) -> String {
    let card = format!("article[data-id=\"{id}\"]");
    for (name, text) in fields {
        let input = browser
            .wait_for(&format!("{card} form.{form} input[name={name}]"), WAIT)
            .await;
        browser.type_into(&input, text).await;
    }
    let button = browser
        .wait_for(&format!("{card} button.{form}"), WAIT)
        .await;
    browser.click(&button).await;
    outcome(browser, id).await
}

/// A console config for the daemon's admin socket and trail, readable by
/// anyone.
pub fn config(dir: &Path, name: &str, daemon: &Running) -> (PathBuf, u16) {
    let port = free_port("127.0.0.1");
    let path = dir.join(name);
    let (socket, trail) = (daemon.admin_socket(), &daemon.audit_path);
    std::fs::write(
        &path,
        format!(
            "[admin]\nsocket = {socket:?}\n[audit]\npath = {trail:?}\n[console]\nlisten = \"127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    crate::agent::readable(&path);
    (path, port)
}
