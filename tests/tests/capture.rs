//! The eBPF capture path end to end: real cgroups, real curl, real kernel
//! programs, an in-process airlock. Run as root (CI is); skipped otherwise
//! unless AIRLOCK_REQUIRE_PRIVILEGED=1.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;

use airlock_tests::curl::curl_to_file;
use airlock_tests::{
    Fetched, Running, Talking, TempDir, TestCgroup, Upstream, WAIT, curl_in, finish, privileged,
};
use serde_json::Value;

fn only(records: Vec<Value>) -> Value {
    assert_eq!(
        records.len(),
        1,
        "expected one connection record: {records:#?}"
    );
    records.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selected_process_is_redirected_and_attributed_exactly() {
    if !privileged("selected_process_is_redirected_and_attributed_exactly") {
        return;
    }
    let cg = TestCgroup::new("select");
    let up = Upstream::on("127.0.0.1").await;
    let mut capture = Running::capture(&cg, &[up.port()]);
    capture.comm = vec!["curl".into()];
    let airlock = Running::start_plain(capture).await;
    let url = format!("http://{}/", up.addr());

    let got = Fetched::parse(&finish(curl_in(&cg, "curl", &url)).await);
    assert!(got.proxied(), "curl was not redirected: {got:?}");
    assert_eq!(
        got.remote,
        up.addr(),
        "getpeername must show the original destination"
    );

    // The same binary under another name is not selected: it goes direct.
    let tmp = TempDir::new("alias");
    let other = tmp.alias("notcurl", "/usr/bin/curl");
    let direct = Fetched::parse(&finish(curl_in(&cg, &other, &url)).await);
    assert!(
        !direct.proxied(),
        "a non-selected process was redirected: {direct:?}"
    );

    let rec = only(
        airlock
            .stop()
            .await
            .into_iter()
            .filter(|r| r["kind"] == "connection")
            .collect(),
    );
    let p = &rec["process"];
    assert_eq!(p["pid"], got.pid);
    assert_eq!(p["comm"], "curl");
    assert_eq!(p["exe"], "/usr/bin/curl");
    // Selected by its own name: its own session.
    assert_eq!(p["agent"]["pid"], got.pid, "{p}");
    assert_eq!(p["agent"]["exe"], "/usr/bin/curl");
    assert!(p["agent"]["start"].as_str().unwrap().ends_with('Z'), "{p}");
    assert_eq!(p["uid"], 0);
    assert!(p["cmdline"].as_str().unwrap().contains(&url), "{p}");
    let cg_meta = std::fs::metadata(cg.path()).unwrap();
    assert_eq!(
        p["cgroup_id"],
        cg_meta.ino(),
        "cgroup id is the cgroup directory's inode"
    );
    let cg_name = cg.path().file_name().unwrap().to_str().unwrap();
    assert!(p["cgroup"].as_str().unwrap().ends_with(cg_name), "{p}");
    assert_eq!(rec["dst"]["ip"], "127.0.0.1");
    assert_eq!(rec["dst"]["port"], up.port());
    assert_eq!(rec["src"]["port"], got.local_port);
    assert!(rec["bytes_out"].as_u64().unwrap() > 20, "{rec}");
    assert!(rec["bytes_in"].as_u64().unwrap() > 20, "{rec}");
    assert!(rec["ts"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_children_captures_a_grandchild_after_exec() {
    if !privileged("follow_children_captures_a_grandchild_after_exec") {
        return;
    }
    let tmp = TempDir::new("agent");
    // An "agent" whose comm is `fakeagent`; it runs sh, which runs curl.
    let agent = tmp.alias("fakeagent", "/bin/sh");
    let up = Upstream::on("127.0.0.1").await;
    let url = format!("http://{}/", up.addr());
    let script = format!(
        "sh -c \"curl -sS --max-time 10 -w '\\n%{{local_port}} %{{remote_ip}} %{{remote_port}}' {url}; true\"; true"
    );

    for follow in [true, false] {
        let cg = TestCgroup::new("follow");
        let mut capture = Running::capture(&cg, &[up.port()]);
        capture.comm = vec!["fakeagent".into()];
        capture.follow_children = follow;
        let airlock = Running::start_plain(capture).await;
        let mut cmd = cg.command(&agent);
        cmd.arg("-c").arg(&script);
        let out = finish(cmd).await;
        let got = Fetched::parse(&out);
        let conns: Vec<Value> = airlock
            .stop()
            .await
            .into_iter()
            .filter(|r| r["kind"] == "connection")
            .collect();
        if follow {
            assert!(got.proxied(), "grandchild not captured: {got:?}");
            let rec = only(conns);
            assert_eq!(rec["process"]["comm"], "curl");
            assert_ne!(
                rec["process"]["ppid"], out.pid,
                "curl must be a grandchild, not a child"
            );
            assert!(
                rec["process"]["cmdline"]
                    .as_str()
                    .unwrap()
                    .starts_with("curl ")
            );
            // The session it belongs to: the selected process, two
            // generations up, alive while curl ran.
            let agent = &rec["process"]["agent"];
            assert_eq!(agent["pid"], out.pid, "{rec}");
            assert!(agent["exe"].is_string(), "{rec}");
        } else {
            assert!(!got.proxied(), "captured without follow_children: {got:?}");
            assert!(conns.is_empty(), "{conns:#?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_children_survives_reparenting() {
    if !privileged("follow_children_survives_reparenting") {
        return;
    }
    let tmp = TempDir::new("orphan");
    let agent = tmp.alias("fakeagent", "/bin/sh");
    let out_file = tmp.path().join("curl.out");
    let up = Upstream::on("127.0.0.1").await;
    let cg = TestCgroup::new("orphan");
    let mut capture = Running::capture(&cg, &[up.port()]);
    capture.comm = vec!["fakeagent".into()];
    let airlock = Running::start_plain(capture).await;
    // The agent backgrounds a shell and exits at once: by the time curl
    // connects, its ancestors are gone and it belongs to init.
    let curl = curl_to_file(&format!("http://{}", up.addr()), &out_file);
    let script = format!(r#"sh -c "sleep 0.5; {curl}" &"#);
    let mut cmd = cg.command(&agent);
    cmd.arg("-c").arg(&script);
    let agent_run = finish(cmd).await;
    assert!(agent_run.status.success(), "{agent_run:?}");
    let got = Fetched::from_file(&out_file).await;
    assert!(
        got.proxied(),
        "re-parented descendant not captured: {got:?}"
    );
    let rec = only(airlock.connections(1).await);
    assert_eq!(rec["process"]["comm"], "curl");
    // Still the agent's session, though the agent is gone and curl now
    // belongs to init: the kernel's tracking carried it.
    let agent = &rec["process"]["agent"];
    assert_eq!(agent["pid"], agent_run.pid, "{rec}");
    assert!(agent["start"].is_string(), "{rec}");
    assert!(
        agent.get("exe").is_none(),
        "an exited agent has no exe: {rec}"
    );
    // Once every descendant has exited, nothing stays tracked.
    let deadline = tokio::time::Instant::now() + WAIT;
    while airlock.tracked_processes() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(airlock.tracked_processes(), 0, "tracked processes leaked");
    airlock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uid_selector_captures_only_that_user() {
    if !privileged("uid_selector_captures_only_that_user") {
        return;
    }
    let cg = TestCgroup::new("uid");
    let up = Upstream::on("127.0.0.1").await;
    let mut capture = Running::capture(&cg, &[up.port()]);
    capture.uid = vec![65534];
    let airlock = Running::start_plain(capture).await;
    let url = format!("http://{}/", up.addr());

    let as_root = Fetched::parse(&finish(curl_in(&cg, "curl", &url)).await);
    assert!(!as_root.proxied(), "root's curl was captured");

    let mut cmd = cg.command("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "curl",
        "-sS",
        "--max-time",
        "10",
    ])
    .args(["-w", "\n%{local_port} %{remote_ip} %{remote_port}", &url]);
    let as_nobody = Fetched::parse(&finish(cmd).await);
    assert!(as_nobody.proxied(), "uid 65534's curl was not captured");

    let rec = only(airlock.connections(1).await);
    assert_eq!(rec["process"]["uid"], 65534);
    assert_eq!(rec["process"]["pid"], as_nobody.pid);
    airlock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_and_v4_mapped_destinations_are_captured() {
    if !privileged("ipv6_and_v4_mapped_destinations_are_captured") {
        return;
    }
    let cg = TestCgroup::new("v6");
    let up = Upstream::bind(&["[::1]:0".parse().unwrap(), "127.0.0.1:0".parse().unwrap()]).await;
    let airlock = Running::start_plain(Running::capture(&cg, &[up.port()])).await;

    let v6 = Fetched::parse(
        &finish(curl_in(
            &cg,
            "curl",
            &format!("http://[::1]:{}/", up.port()),
        ))
        .await,
    );
    assert!(v6.proxied(), "{v6:?}");
    assert_eq!(v6.remote, up.addr());
    assert_eq!(v6.upstream_local, up.addr());

    // A dual-stack socket dialling an IPv4-mapped address.
    let mapped_url = format!("http://[::ffff:127.0.0.1]:{}/", up.port());
    let mapped = Fetched::parse(&finish(curl_in(&cg, "curl", &mapped_url)).await);
    assert!(mapped.proxied(), "{mapped:?}");
    let want: SocketAddr = format!("[::ffff:127.0.0.1]:{}", up.port()).parse().unwrap();
    assert_eq!(mapped.remote, want);
    assert_eq!(
        mapped.upstream_local,
        format!("127.0.0.1:{}", up.port()).parse().unwrap()
    );

    let conns = airlock.stop().await;
    let dsts: Vec<&str> = conns
        .iter()
        .filter(|r| r["kind"] == "connection")
        .map(|r| r["dst"]["ip"].as_str().unwrap())
        .collect();
    assert_eq!(dsts.len(), 2, "{conns:#?}");
    assert!(
        dsts.contains(&"::1") && dsts.contains(&"127.0.0.1"),
        "{dsts:?}"
    );
}

const UDP_PROBE: &str = r#"
import socket, sys
port, other = int(sys.argv[1]), int(sys.argv[2])
out = []
for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    for how, p in (("sendto", port), ("connect", port), ("sendto", other)):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            s.sendto(b"q", (host, p)) if how == "sendto" else s.connect((host, p))
            out.append("ok")
        except PermissionError:
            out.append("refused")
        s.close()
print(" ".join(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_to_port_443_is_refused_for_captured_processes() {
    if !privileged("udp_to_port_443_is_refused_for_captured_processes") {
        return;
    }
    let cg = TestCgroup::new("udp");
    let airlock = Running::start_plain(Running::capture(&cg, &[443])).await;

    let mut inside = cg.command("python3");
    inside.args(["-c", UDP_PROBE, "443", "4443"]);
    let out = finish(inside).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout.trim(), "refused refused ok refused refused ok");

    // Outside the capture cgroup nothing changes.
    let mut outside = tokio::process::Command::new("python3");
    outside.args(["-c", UDP_PROBE, "443", "4443"]);
    let out = finish(outside).await;
    assert_eq!(out.stdout.trim(), "ok ok ok ok ok ok", "{out:?}");
    airlock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_connections_map_exactly_and_leave_no_entries() {
    if !privileged("two_hundred_concurrent_connections_map_exactly_and_leave_no_entries") {
        return;
    }
    const N: usize = 200;
    let cg = TestCgroup::new("many");
    let addrs: Vec<SocketAddr> = (0..N)
        .map(|i| {
            SocketAddr::new(
                format!("127.0.{}.{}", 1 + i / 250, 10 + i % 250)
                    .parse()
                    .unwrap(),
                0,
            )
        })
        .collect();
    let up = Upstream::bind(&addrs).await;
    let airlock = Running::start_plain(Running::capture(&cg, &[up.port()])).await;

    let mut runs = tokio::task::JoinSet::new();
    for a in &addrs {
        let dst = SocketAddr::new(a.ip(), up.port());
        let cmd = curl_in(&cg, "curl", &format!("http://{dst}/"));
        runs.spawn(async move { (dst, Fetched::parse(&finish(cmd).await)) });
    }
    let mut by_pid = HashMap::new();
    while let Some(done) = runs.join_next().await {
        let (dst, got) = done.unwrap();
        // Not `got.proxied()`: across 200 connections, airlock's upstream
        // socket can draw the same ephemeral port as curl's own. That each
        // one was captured is shown by its audit record below.
        assert_eq!(
            got.upstream_local, dst,
            "connection delivered to the wrong destination"
        );
        assert_eq!(got.remote, dst);
        by_pid.insert(got.pid, (dst, got.local_port));
    }
    let conns = airlock.connections(N).await;
    assert_eq!(conns.len(), N);
    for c in &conns {
        let pid = c["process"]["pid"].as_u64().unwrap() as u32;
        let (dst, local_port) = by_pid
            .get(&pid)
            .unwrap_or_else(|| panic!("record for unknown pid {pid}"));
        assert_eq!(
            c["src"]["port"], *local_port,
            "pid {pid}: the record is of curl's own socket"
        );
        assert_eq!(
            c["dst"]["ip"],
            dst.ip().to_string(),
            "pid {pid} attributed the wrong destination"
        );
    }
    // Every map entry is released once the sockets close.
    let deadline = tokio::time::Instant::now() + WAIT;
    while airlock.map_entries() != (0, 0) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        airlock.map_entries(),
        (0, 0),
        "(by-cookie, by-peer) entries leaked"
    );
    airlock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_detaches_and_unloads_every_program() {
    if !privileged("shutdown_detaches_and_unloads_every_program") {
        return;
    }
    let cg = TestCgroup::new("detach");
    let up = Upstream::on("127.0.0.1").await;
    let airlock = Running::start_plain(Running::capture(&cg, &[up.port()])).await;
    let ids = airlock.program_ids.clone();
    // Eleven, and a twelfth (fexit on commit_creds) where the kernel can
    // attach fexit programs.
    assert!(
        (11..=12).contains(&ids.len()),
        "every program loaded: {ids:?}"
    );
    let url = format!("http://{}/", up.addr());
    assert!(Fetched::parse(&finish(curl_in(&cg, "curl", &url)).await).proxied());

    let records = airlock.stop().await;
    // The kernel frees programs after an RCU grace period: poll briefly.
    let deadline = tokio::time::Instant::now() + WAIT;
    let still_loaded = || -> Vec<u32> {
        aya::programs::loaded_programs()
            .filter_map(|p| p.ok().map(|p| p.id()))
            .filter(|id| ids.contains(id))
            .collect()
    };
    while !still_loaded().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        still_loaded(),
        Vec::<u32>::new(),
        "programs still loaded after shutdown"
    );
    let after = Fetched::parse(&finish(curl_in(&cg, "curl", &url)).await);
    assert!(!after.proxied(), "still redirected after shutdown");
    let events: Vec<&Value> = records
        .iter()
        .filter(|r| r["kind"] == "agent")
        .map(|r| &r["event"])
        .collect();
    assert_eq!(events, ["start", "stop"]);
}

/// Connects, prints what getpeername() says, then the upstream's report.
const PEERNAME_PROBE: &str = r#"
import json, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.connect((host, port))
peer = s.getpeername()
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(json.dumps({"peer": [peer[0], peer[1]], "local_port": s.getsockname()[1],
                  "upstream": json.loads(data.split(b"\r\n\r\n", 1)[1])}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn getpeername_returns_the_original_destination() {
    if !privileged("getpeername_returns_the_original_destination") {
        return;
    }
    let cg = TestCgroup::new("peername");
    // 127.0.0.7 differs from the proxy's 127.0.0.1 in address and port.
    let up = Upstream::bind(&["127.0.0.7:0".parse().unwrap(), "[::1]:0".parse().unwrap()]).await;
    let airlock = Running::start_plain(Running::capture(&cg, &[up.port()])).await;
    let port = up.port().to_string();
    for (host, want_ip) in [
        ("127.0.0.7", "127.0.0.7"),
        ("::1", "::1"),
        ("::ffff:127.0.0.7", "::ffff:127.0.0.7"),
    ] {
        let mut cmd = cg.command("python3");
        cmd.args(["-c", PEERNAME_PROBE, host, &port]);
        let out = finish(cmd).await;
        assert!(out.status.success(), "{out:?}");
        let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
        assert_eq!(v["peer"][0], want_ip, "{host}: {v}");
        assert_eq!(v["peer"][1], up.port(), "{host}: {v}");
        let upstream_peer: SocketAddr = v["upstream"]["peer"].as_str().unwrap().parse().unwrap();
        assert_ne!(
            upstream_peer.port(),
            v["local_port"],
            "{host} was not redirected: {v}"
        );
    }
    airlock.stop().await;
}

/// Connects from a thread that renamed itself, as runtimes do
/// (`tokio-runtime-w`, `HttpClient-1-Wo`), and prints the upstream's report
/// and its own local port.
const RENAMED_THREAD_PROBE: &str = r#"
import ctypes, json, socket, sys, threading
out = {}
def work():
    ctypes.CDLL(None).prctl(15, b"worker-thread", 0, 0, 0)  # PR_SET_NAME
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    data = b""
    while chunk := s.recv(4096):
        data += chunk
    out["local_port"] = s.getsockname()[1]
    out["upstream"] = json.loads(data.split(b"\r\n\r\n", 1)[1])
t = threading.Thread(target=work)
t.start()
t.join()
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selection_is_by_process_name_not_by_a_renamed_thread() {
    if !privileged("selection_is_by_process_name_not_by_a_renamed_thread") {
        return;
    }
    let mut which = tokio::process::Command::new("python3");
    which.args(["-c", "import sys; print(sys.executable)"]);
    let python = finish(which).await;
    let tmp = TempDir::new("threads");
    let agent = tmp.alias("fakeagent", python.stdout.trim());
    let up = Upstream::on("127.0.0.1").await;
    let cg = TestCgroup::new("threads");
    let mut capture = Running::capture(&cg, &[up.port()]);
    capture.comm = vec!["fakeagent".into()];
    capture.follow_children = false;
    let airlock = Running::start_plain(capture).await;
    let mut cmd = cg.command(&agent);
    cmd.args(["-c", RENAMED_THREAD_PROBE, &up.port().to_string()]);
    let out = finish(cmd).await;
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let rec = only(airlock.connections(1).await);
    assert_eq!(
        rec["process"]["comm"], "fakeagent",
        "the process's name, not the thread's"
    );
    assert_eq!(
        rec["src"]["port"], v["local_port"],
        "the renamed thread's connection was captured"
    );
    airlock.stop().await;
}

/// A parent (not selected) forks a child that fetches once; then the parent
/// (`parent`) or the child itself (`self`) takes a selected name
/// (`name:N`, through `/proc/self/comm` as prctl would) or uid (`uid:U`,
/// setuid), and the same child fetches again. Prints whether each fetch
/// went through airlock.
const CHANGED_PROBE: &str = r#"
import json, os, socket, sys
port, change, who = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def proxied():
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    data = b""
    while chunk := s.recv(4096):
        data += chunk
    peer = json.loads(data.split(b"\r\n\r\n", 1)[1])["peer"]
    return int(peer.rsplit(":", 1)[1]) != s.getsockname()[1]
def become():
    kind, value = change.split(":", 1)
    if kind == "name":
        with open("/proc/self/comm", "w") as f:
            f.write(value)
    else:
        os.setuid(int(value))
told, tell = os.pipe()
go, start = os.pipe()
if os.fork() == 0:
    os.write(tell, b"1" if proxied() else b"0")
    os.read(go, 1)
    if who == "self":
        become()
    os.write(tell, b"1" if proxied() else b"0")
    os._exit(0)
first = os.read(told, 1)
if who == "parent":
    become()
os.write(start, b"x")
second = os.read(told, 1)
os.wait()
print(json.dumps({"first": first == b"1", "second": second == b"1"}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_left_alone_is_captured_once_it_or_an_ancestor_takes_a_selected_name_or_uid() {
    if !privileged(
        "a_process_left_alone_is_captured_once_it_or_an_ancestor_takes_a_selected_name_or_uid",
    ) {
        return;
    }
    let up = Upstream::on("127.0.0.1").await;
    // (who changes, to what, the selector, what the child's record says)
    let cases = [
        ("parent", "name:fakeagent", "comm", ("python3", 0)),
        ("self", "name:fakeagent", "comm", ("fakeagent", 0)),
        ("parent", "uid:65534", "uid", ("python3", 0)),
    ];
    for (who, change, selector, (comm, uid)) in cases {
        let cg = TestCgroup::new("changed");
        let mut capture = Running::capture(&cg, &[up.port()]);
        if selector == "comm" {
            capture.comm = vec!["fakeagent".into()];
        } else {
            capture.uid = vec![65534];
        }
        let airlock = Running::start_plain(capture).await;
        let mut cmd = cg.command("python3");
        cmd.args(["-c", CHANGED_PROBE, &up.port().to_string(), change, who]);
        let out = finish(cmd).await;
        let case = format!("{who} takes {change}");
        assert!(out.status.success(), "{case}: {out:?}");
        let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
        // The first "not selected" is remembered; the change must void it.
        assert_eq!(v["first"], false, "{case}: {v}");
        assert_eq!(v["second"], true, "{case}: {v}");
        let rec = only(airlock.connections(1).await);
        assert_eq!(rec["process"]["comm"], comm, "{case}");
        assert_eq!(rec["process"]["uid"], uid, "{case}");
        airlock.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_still_open_at_shutdown_is_recorded() {
    if !privileged("a_connection_still_open_at_shutdown_is_recorded") {
        return;
    }
    let cg = TestCgroup::new("open-at-stop");
    let up = Upstream::on("127.0.0.1").await;
    let airlock = Running::start_plain(Running::capture(&cg, &[up.port()])).await;
    // Half a request, then waiting: the connection stays open.
    let script = format!(
        "import socket, sys, time\ns = socket.create_connection(('127.0.0.1', {}))\ns.sendall(b'GET / HTTP/1.1\\r\\nHost: x\\r\\n')\nprint('sent', flush=True)\ntime.sleep(60)",
        up.port()
    );
    let mut cmd = cg.command("python3");
    cmd.args(["-c", &script]);
    let mut client = Talking::spawn(cmd);
    assert_eq!(client.line().await, "sent");
    // airlock has spliced it through once the upstream has accepted it.
    let deadline = tokio::time::Instant::now() + WAIT;
    while up.accepted() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never reached the upstream"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // Shutdown drains for its timeout, then aborts what is left.
    let records = airlock.stop().await;
    let conns: Vec<&Value> = records
        .iter()
        .filter(|r| r["kind"] == "connection")
        .collect();
    assert_eq!(conns.len(), 1, "{records:#?}");
    assert!(
        conns[0]["error"].as_str().unwrap().starts_with("aborted"),
        "{}",
        conns[0]
    );
    assert_eq!(conns[0]["bytes_out"], 25, "the bytes sent so far are kept");
    assert_eq!(records.last().unwrap()["event"], "stop");
    let _ = client.child.kill().await;
}

/// A process flood cannot release a tracked process: the tracking map
/// evicts nothing, and when it is full every process in the cgroup is
/// captured (fail closed) and airlock says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_tracking_map_captures_everything_in_the_cgroup() {
    if !privileged("a_full_tracking_map_captures_everything_in_the_cgroup") {
        return;
    }
    let tmp = TempDir::new("flood");
    let agent = tmp.alias("fakeagent", "/bin/sh");
    let up = Upstream::on("127.0.0.1").await;
    let cg = TestCgroup::new("flood");
    let mut capture = Running::capture(&cg, &[up.port()]);
    capture.comm = vec!["fakeagent".into()];
    capture.max_tracked = 8;
    let airlock = Running::start_plain(capture).await;
    let url = format!("http://{}/", up.addr());
    // Not selected, not a descendant: goes direct.
    let before = Fetched::parse(&finish(curl_in(&cg, "curl", &url)).await);
    assert!(!before.proxied(), "{before:?}");

    // The agent starts more children than can be tracked, and they stay.
    let mut flood = cg.command(&agent);
    flood
        .arg("-c")
        .arg("for i in $(seq 12); do sleep 3 & done; wait")
        .kill_on_drop(true);
    let flood = flood.spawn().unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while airlock.tracked_processes() < 8 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        airlock.tracked_processes(),
        8,
        "nothing evicted, nothing more added"
    );

    // Four children went untracked: now nothing in the cgroup goes direct.
    let after = Fetched::parse(&finish(curl_in(&cg, "curl", &url)).await);
    assert!(
        after.proxied(),
        "fail closed once tracking is incomplete: {after:?}"
    );
    drop(flood);
    airlock.stop().await;
}

/// An agent can hand a command to a server started earlier and not by it
/// (a tmux session, an IDE terminal): selected by name, that server and
/// what it runs are not the agent's descendants and are not captured
/// (docs/developer-hosts.md says so); selected by uid, they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_handed_to_an_earlier_server_is_captured_by_uid_only() {
    if !privileged("a_command_handed_to_an_earlier_server_is_captured_by_uid_only") {
        return;
    }
    let up = Upstream::on("127.0.0.1").await;
    for by_uid in [false, true] {
        let tmp = TempDir::new("handoff");
        std::fs::set_permissions(
            tmp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let agent = tmp.alias("fakeagent", "/bin/sh");
        let fifo = tmp.path().join("commands");
        let out = tmp.path().join("server.out");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .unwrap();
        let cg = TestCgroup::new("handoff");
        let mut capture = Running::capture(&cg, &[up.port()]);
        if by_uid {
            capture.uid = vec![65534];
        } else {
            capture.comm = vec!["fakeagent".into()];
        }
        let airlock = Running::start_plain(capture).await;
        // The "tmux server": started first, by nobody, not by the agent;
        // it runs whatever line arrives.
        let mut server = cg.command("setpriv");
        server
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "sh",
                "-c",
            ])
            .arg(format!(
                "read -r script < {f}; sh \"$script\"",
                f = fifo.display(),
            ))
            .kill_on_drop(true);
        let server = server.spawn().unwrap();
        // The agent hands it a script that runs curl.
        let script = tmp.path().join("job.sh");
        std::fs::write(
            &script,
            curl_to_file(&format!("http://{}", up.addr()), &out) + "\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let mut hand = cg.command("setpriv");
        hand.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&agent)
            .arg("-c")
            .arg(format!(
                "printf '%s\\n' {} > {}",
                script.display(),
                fifo.display()
            ));
        assert!(finish(hand).await.status.success());
        let got = Fetched::from_file(&out).await;
        assert_eq!(
            got.proxied(),
            by_uid,
            "by uid: captured; by name: the server is not the agent's descendant: {got:?}"
        );
        drop(server);
        airlock.stop().await;
    }
}

/// airlock's status, read from its admin socket (as root).
async fn status(airlock: &Running) -> Value {
    let mut cmd = tokio::process::Command::new("curl");
    cmd.args(["-sS", "--unix-socket"])
        .arg(airlock.admin_socket())
        .arg("http://airlock/v1/status");
    let out = finish(cmd).await;
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("status {out:?}: {e}"))
}

/// Waits until `status.capture.cgroups` says whether `dir` is attached.
async fn attached(airlock: &Running, dir: &std::path::Path, want: bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = status(airlock).await;
        let listed = s["capture"]["cgroups"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c == dir.to_str().unwrap()));
        if listed == want || tokio::time::Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_in_a_cgroup_made_later_and_its_own_network_namespace_is_captured() {
    if !privileged("a_container_in_a_cgroup_made_later_and_its_own_network_namespace_is_captured") {
        return;
    }
    // A container runtime's layout: jobs' cgroups appear under a parent
    // (`docker-*.scope` under system.slice), each job in a network
    // namespace of its own behind a bridge.
    let parent = TestCgroup::new("containers");
    let net = airlock::ContainerNetwork::create().unwrap();
    let gateway = net.gateway().to_string();
    // "Azure", reachable from the host at the bridge's address; and a
    // service on the host's loopback a container must never reach.
    let up = Upstream::on(&gateway).await;
    let host_only = Upstream::on("127.0.0.1").await;
    let capture = airlock::CaptureConfig {
        cgroup: vec![parent.path().join("job-*")],
        ports: vec![up.port(), host_only.port()],
        ..airlock::CaptureConfig::default()
    };
    let airlock = Running::start_with(capture, |c| {
        c.proxy.non_tls = airlock::NonTls::Relay;
        c.proxy.listen_containers = Some(format!("{gateway}:0").parse().unwrap());
    })
    .await;
    let before = status(&airlock).await;
    assert_eq!(
        before["capture"]["cgroups"],
        serde_json::json!([]),
        "{before}"
    );

    // The job's cgroup is made after airlock started: attached as it appears.
    let job_cg = parent.child("job-1");
    let job = job_cg.path().to_owned();
    let s = attached(&airlock, &job, true).await;
    assert_eq!(s["capture"]["cgroups"], serde_json::json!([job]), "{s}");

    let url = format!("http://{}/", up.addr());
    let mut curl = net.command(job_cg.owned(), 65534, "curl");
    curl.args([
        "-sS",
        "-g",
        "--max-time",
        "10",
        "-w",
        airlock_tests::curl::WRITE_OUT,
        &url,
    ]);
    let got = Fetched::parse(&finish(curl).await);
    assert!(got.proxied(), "the container's curl went direct: {got:?}");
    assert_eq!(
        got.remote,
        up.addr(),
        "getpeername shows where it was going"
    );
    let rec = only(airlock.connections(1).await);
    let p = &rec["process"];
    assert_eq!(p["pid"], got.pid, "{rec}");
    assert_eq!(p["uid"], 65534);
    assert_eq!(p["exe"], "/usr/bin/curl");
    assert!(p["cgroup"].as_str().unwrap().ends_with("/job-1"), "{p}");
    assert!(
        p["netns"].as_u64().is_some_and(|n| n > 0),
        "another namespace is named: {p}"
    );
    assert_eq!(rec["dst"]["ip"], gateway);
    assert_eq!(rec["dst"]["port"], up.port());
    assert_eq!(rec["src"]["ip"], net.addr().to_string());

    // Attacks. The container's own loopback is its own: not redirected,
    // so the host's loopback service is never reached on its behalf.
    let mut lo = net.command(job_cg.owned(), 65534, "curl");
    lo.args(["-sS", "--max-time", "5"])
        .arg(format!("http://127.0.0.1:{}/", host_only.port()));
    let lo = finish(lo).await;
    assert!(!lo.status.success(), "{lo:?}");
    assert_eq!(
        host_only.accepted(),
        0,
        "a container reached the host's loopback"
    );
    // A process of the namespace that airlock does not capture (in the
    // parent cgroup, which no glob matches) dials the containers' listener
    // itself: no kernel record says where it was going, so it goes nowhere.
    let listener = before["proxy"]["listen"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a.as_str().unwrap().starts_with(&gateway))
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    let mut direct = net.command(parent.owned(), 65534, "curl");
    direct
        .args(["-sS", "--max-time", "5"])
        .arg(format!("http://{listener}/"));
    let direct = finish(direct).await;
    assert!(!direct.status.success(), "{direct:?}");
    assert_eq!(
        up.accepted(),
        1,
        "only the captured curl reached the upstream"
    );

    // The job ends, its cgroup goes: airlock lets go of it.
    drop(job_cg);
    let s = attached(&airlock, &job, false).await;
    assert_eq!(s["capture"]["cgroups"], serde_json::json!([]), "{s}");
    let records = airlock.stop().await;
    assert_eq!(
        records.iter().filter(|r| r["kind"] == "connection").count(),
        1,
        "{records:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_listener_for_containers_their_connects_are_refused_not_let_through() {
    if !privileged("without_a_listener_for_containers_their_connects_are_refused_not_let_through") {
        return;
    }
    let cg = TestCgroup::new("nolisten");
    let net = airlock::ContainerNetwork::create().unwrap();
    let up = Upstream::on(&net.gateway().to_string()).await;
    let airlock = Running::start_plain(Running::capture(&cg, &[up.port()])).await;
    // In the namespace, 127.0.0.1 is not airlock: redirecting there would
    // fail anyway, and going direct would go unaudited.
    let mut curl = net.command(cg.owned(), 65534, "curl");
    curl.args(["-sS", "--max-time", "5"])
        .arg(format!("http://{}/", up.addr()));
    let out = finish(curl).await;
    assert!(!out.status.success(), "{out:?}");
    assert_eq!(up.accepted(), 0, "a container's connect went direct");
    let s = status(&airlock).await;
    assert_eq!(s["capture"]["netns_refused"], 1, "{s}");
    airlock.stop().await;
}
