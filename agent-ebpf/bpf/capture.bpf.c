// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* airlock capture: redirect selected processes' TCP connects to the local
 * proxy, remember the original destination and the caller, and refuse UDP to
 * captured ports (QUIC must fall back to TCP, which is captured).
 *
 * Flow of one connection:
 *   connect4/6   rewrite dst to the proxy (from another network namespace:
 *                its listener for containers), store airlock_orig by socket
 *                cookie
 *   sockops      on ACTIVE_ESTABLISHED copy it to by_peer keyed by the
 *                client's local address (what the proxy sees on accept)
 *   proxy        looks up by_peer with the peer address, deletes the entry
 *   getpeername  answers with the original destination from by_cookie
 *   sockops      on TCP_CLOSE deletes both entries
 * Both maps are LRU so a socket that never reaches either end still cannot
 * exhaust them.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

#include "airlock.h"

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define IPPROTO_TCP 6
#define MAX_ANCESTORS 32

/* Context fields must be accessed 4 bytes at a time: clang would merge two
 * adjacent u32 loads/stores into one u64 access, which the verifier refuses
 * for these ctx fields. volatile keeps them separate. */
#define CTX_U32(field) (*(volatile __u32 *)&(field))

/* An IPv6 address from a context's four u32 fields into `dst` (16 bytes),
 * each field read on its own (see CTX_U32). */
#define CTX_IP6(dst, fields)                             \
	do {                                             \
		__u32 ip6_[4];                           \
		ip6_[0] = CTX_U32((fields)[0]);          \
		ip6_[1] = CTX_U32((fields)[1]);          \
		ip6_[2] = CTX_U32((fields)[2]);          \
		ip6_[3] = CTX_U32((fields)[3]);          \
		__builtin_memcpy((dst), ip6_, 16);       \
	} while (0)

/* Minimal CO-RE views of kernel types; relocated against the running
 * kernel's BTF at load time, so no vmlinux.h is needed. */
typedef struct { __u32 val; } kuid_t;
typedef struct { int counter; } atomic_t;
struct signal_struct {
	atomic_t live;
} __attribute__((preserve_access_index));
struct cred {
	kuid_t uid;
} __attribute__((preserve_access_index));
struct task_struct {
	int pid;
	int tgid;
	__u64 start_time;
	__u64 start_boottime;
	__u64 self_exec_id;
	struct task_struct *real_parent;
	struct task_struct *group_leader;
	struct signal_struct *signal;
	const struct cred *cred;
	char comm[AIRLOCK_COMM_LEN];
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct airlock_config);
} AIRLOCK_CONFIG SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, __u8);
} AIRLOCK_PORTS SEC(".maps");

/* Destinations captured whatever AIRLOCK_PORTS says: the instance metadata
 * service (169.254.169.254:80), which speaks plain HTTP on a port that is
 * not captured for TLS. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct airlock_addr_key);
	__type(value, __u8);
} AIRLOCK_DESTS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, char[AIRLOCK_COMM_LEN]);
	__type(value, __u8);
} AIRLOCK_COMMS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u8);
} AIRLOCK_UIDS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct airlock_orig);
} AIRLOCK_BY_COOKIE SEC(".maps");

/* Processes descended from a match (follow_children), by tgid, with when
 * each started (start_boottime, ns: what /proc/PID/stat says in ticks, so
 * a reused pid is told from the process tracked): filled at fork, emptied
 * at exit. Survives re-parenting, which the ancestry walk does not (a
 * backgrounded `az` whose shell exited belongs to init). Not an LRU: an
 * entry is never evicted to make room, so a process flood cannot release
 * a tracked process; when it is full, AIRLOCK_UNTRACKED says so. Its size
 * is `capture.max_tracked`; with fail_mode = "closed" userspace pins it,
 * so it outlives an airlock restart. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	/* Memory as entries come, not all of it up front (it may be pinned
	 * for a cgroup long after its processes are gone). */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct airlock_tracked);
} AIRLOCK_TRACKED SEC(".maps");

/* Children of tracked or selected processes that could not be tracked
 * because AIRLOCK_TRACKED was full. While non-zero, every process in the
 * cgroup is captured (fail closed): such a child can no longer be told
 * from the others. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} AIRLOCK_UNTRACKED SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct airlock_addr_key);
	__type(value, struct airlock_orig);
} AIRLOCK_BY_PEER SEC(".maps");

/* "Not selected" remembered per process (by tgid), so a process that is
 * not selected pays for the ancestry walk once, not at every connect. An
 * entry holds only while the process keeps the uid it was judged with and
 * AIRLOCK_EPOCH has not moved: it moves when any process takes a selected
 * name (exec or prctl rename) or a selected uid (commit_creds) — the only
 * ways the process itself or an existing ancestry starts to match — and
 * when userspace changes the selection. Emptied at exit; LRU, so it
 * cannot fill up. */
struct airlock_judged {
	__u64 epoch;
	__u64 at;                  /* when the judging began (ns, monotonic) */
	__u32 uid;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct airlock_judged);
} AIRLOCK_JUDGED SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} AIRLOCK_EPOCH SEC(".maps");

/* When task_rename last moved the epoch (ns, monotonic). That hook runs
 * just before the new name is copied in, so a walk begun in the moments
 * after it may still have read the old name: what such a walk found is
 * not trusted later (exec and credential changes move the epoch again,
 * after the fact, and need no such grace). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} AIRLOCK_RENAMED_AT SEC(".maps");

#define RENAME_GRACE_NS (10ULL * 1000 * 1000)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} AIRLOCK_EVENTS SEC(".maps");

static __always_inline const struct airlock_config *config(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&AIRLOCK_CONFIG, &zero);
}

/* The process's name: its main thread's comm. Threads rename themselves
 * (tokio-runtime-w, HttpClient-1-Wo, .NET TP Worker); what a user selects
 * is the program, so selection never looks at a worker thread's name. */
static __always_inline void process_comm(struct task_struct *task, char comm[AIRLOCK_COMM_LEN])
{
	__builtin_memset(comm, 0, AIRLOCK_COMM_LEN);
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);
	BPF_CORE_READ_STR_INTO((char (*)[AIRLOCK_COMM_LEN])comm, leader, comm);
}

/* Does a process with this comm and uid match the comm/uid selectors?
 * Selectors combine with AND; entries within one selector with OR. */
static __always_inline int matches(const struct airlock_config *cfg,
				   const char comm[AIRLOCK_COMM_LEN], __u32 uid)
{
	if ((cfg->flags & AIRLOCK_F_FILTER_COMM) &&
	    !bpf_map_lookup_elem(&AIRLOCK_COMMS, comm))
		return 0;
	if ((cfg->flags & AIRLOCK_F_FILTER_UID) &&
	    !bpf_map_lookup_elem(&AIRLOCK_UIDS, &uid))
		return 0;
	return 1;
}

/* Names `task` as the agent of a record: the selected process whose
 * selection brought the caller under capture. */
static __always_inline void name_agent(struct airlock_orig *rec, struct task_struct *task)
{
	rec->agent = BPF_CORE_READ(task, tgid);
	rec->agent_start = BPF_CORE_READ(task, group_leader, start_boottime);
}

/* Does any ancestor of the current process (up to max_depth) match? If
 * so, it is named as the record's agent. `comm` is scratch space. */
static __always_inline int ancestor_matches(const struct airlock_config *cfg,
					    char comm[AIRLOCK_COMM_LEN],
					    struct airlock_orig *rec)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	task = BPF_CORE_READ(task, real_parent);
	for (int i = 0; i < MAX_ANCESTORS; i++) {
		if (!task || i >= cfg->max_depth)
			return 0;
		__u32 ptgid = BPF_CORE_READ(task, tgid);
		if (ptgid <= 1)
			return 0;
		/* Descendants of airlock (e.g. the demo's agent) are judged on
		 * their own and their other ancestors, never via airlock. */
		if (ptgid != cfg->self_tgid) {
			process_comm(task, comm);
			__u32 uid = BPF_CORE_READ(task, cred, uid.val);
			if (matches(cfg, comm, uid)) {
				name_agent(rec, task);
				return 1;
			}
		}
		task = BPF_CORE_READ(task, real_parent);
	}
	return 0;
}

/* The agent a tracked process descends from, named in `rec`. */
static __always_inline int tracked_agent(__u32 tgid, struct airlock_orig *rec)
{
	struct airlock_tracked *t = bpf_map_lookup_elem(&AIRLOCK_TRACKED, &tgid);

	if (!t)
		return 0;
	rec->agent = t->agent;
	rec->agent_start = t->agent_start;
	return 1;
}

/* Is the current process captured? The attach cgroup already scoped us;
 * here: never airlock itself, then comm/uid, then (follow_children) any
 * ancestor that matches, which survives exec of another binary because the
 * ancestor's comm is what counts. Names the process the selection came
 * from in `rec` (`agent`): the caller, a tracked ancestor's agent, or the
 * ancestor that matched; none when there are no selectors. */
static __always_inline int selected(const struct airlock_config *cfg, struct airlock_orig *rec)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	char comm[AIRLOCK_COMM_LEN] = {};
	__u32 zero = 0;

	if (tgid == cfg->self_tgid)
		return 0;
	if (!(cfg->flags & (AIRLOCK_F_FILTER_COMM | AIRLOCK_F_FILTER_UID)))
		return 1;
	if (cfg->flags & AIRLOCK_F_FOLLOW_CHILDREN) {
		volatile __u64 *untracked = bpf_map_lookup_elem(&AIRLOCK_UNTRACKED, &zero);

		if (untracked && *untracked) {
			tracked_agent(tgid, rec);
			return 1; /* a descendant may have gone untracked: fail closed */
		}
	}
	/* A process judged with this uid and epoch was neither a match itself
	 * nor tracked (tracking starts at fork, before any judging), and no
	 * process (itself included) has taken a selected name or uid since:
	 * the same answer again, without reading a name. */
	volatile __u64 *epoch = 0;
	__u64 before = 0, now = 0;
	if ((cfg->flags & AIRLOCK_F_FOLLOW_CHILDREN) && (cfg->flags & AIRLOCK_F_REMEMBER))
		epoch = bpf_map_lookup_elem(&AIRLOCK_EPOCH, &zero);
	if (epoch) {
		volatile __u64 *renamed = bpf_map_lookup_elem(&AIRLOCK_RENAMED_AT, &zero);
		struct airlock_judged *seen;

		before = *epoch;
		seen = bpf_map_lookup_elem(&AIRLOCK_JUDGED, &tgid);
		if (seen && renamed && seen->epoch == before && seen->uid == uid &&
		    seen->at >= *renamed + RENAME_GRACE_NS)
			return 0;
		now = bpf_ktime_get_ns();
	}
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	process_comm(task, comm);
	if (matches(cfg, comm, uid)) {
		/* Started by a selected process (an agent's `az` that is
		 * selected by name too): that one's session. */
		if (!tracked_agent(tgid, rec))
			name_agent(rec, task);
		return 1;
	}
	if (!(cfg->flags & AIRLOCK_F_FOLLOW_CHILDREN))
		return 0;
	if (tracked_agent(tgid, rec))
		return 1;
	if (ancestor_matches(cfg, comm, rec))
		return 1;
	/* Remembered only if nothing moved the epoch during the walk. */
	if (epoch && *epoch == before) {
		struct airlock_judged judged = {
			.epoch = before,
			.at = now,
			.uid = uid,
		};
		bpf_map_update_elem(&AIRLOCK_JUDGED, &tgid, &judged, BPF_ANY);
	}
	return 0;
}

static __always_inline void fill_caller(struct airlock_orig *rec)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();

	rec->pid = (__u32)pid_tgid;
	rec->tgid = pid_tgid >> 32;
	rec->uid = (__u32)uid_gid;
	rec->gid = uid_gid >> 32;
	rec->cgroup_id = bpf_get_current_cgroup_id();
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	process_comm(task, rec->comm);
	/* Which run of which program: userspace keeps what it read from
	 * /proc for a process under these, and reads again after an exec. */
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);
	rec->start_time = BPF_CORE_READ(leader, start_time);
	rec->exec_id = BPF_CORE_READ(leader, self_exec_id);
}

static __always_inline void emit(__u32 kind, const struct airlock_orig *rec)
{
	struct airlock_event *ev;

	ev = bpf_ringbuf_reserve(&AIRLOCK_EVENTS, sizeof(*ev), 0);
	if (!ev)
		return; /* userspace is behind: logging is best effort */
	ev->kind = kind;
	ev->_pad = 0;
	__builtin_memcpy(&ev->orig, rec, sizeof(*rec));
	bpf_ringbuf_submit(ev, 0);
}

static __always_inline void v4_mapped(__u8 addr[16], __u32 ip4_be)
{
	__builtin_memset(addr, 0, 10);
	addr[10] = 0xff;
	addr[11] = 0xff;
	__builtin_memcpy(&addr[12], &ip4_be, 4);
}

/* The record for an IPv4 / IPv6 destination in ctx, with the caller. */
static __always_inline void orig4(struct bpf_sock_addr *ctx, struct airlock_orig *rec)
{
	v4_mapped(rec->addr, ctx->user_ip4);
	rec->port = bpf_ntohs((__u16)ctx->user_port);
	rec->family = AF_INET;
	rec->netns = bpf_get_netns_cookie(ctx);
	fill_caller(rec);
}

static __always_inline void orig6(struct bpf_sock_addr *ctx, struct airlock_orig *rec)
{
	CTX_IP6(rec->addr, ctx->user_ip6);
	rec->port = bpf_ntohs((__u16)ctx->user_port);
	rec->family = AF_INET6;
	rec->netns = bpf_get_netns_cookie(ctx);
	fill_caller(rec);
}

/* Is the socket in a network namespace other than airlock's (a container)?
 * There 127.0.0.1 is not airlock: such connects go to the containers
 * listener, an address of airlock's the namespace can reach. */
static __always_inline int foreign_netns(const struct airlock_config *cfg, __u64 netns)
{
	return cfg->host_netns && netns != cfg->host_netns;
}

/* 127.0.0.0/8 or ::1 (in `addr`, IPv4 mapped): in another namespace, that
 * namespace's own loopback. Left alone: airlock cannot reach it, and
 * dialling the host's loopback in its place would hand a container the
 * host's local services. */
static __always_inline int loopback(const __u8 addr[16])
{
	__u32 ip6[4];

	__builtin_memcpy(ip6, addr, 16);
	if (ip6[0] == 0 && ip6[1] == 0 && ip6[2] == bpf_htonl(0xffff))
		return addr[12] == 127;
	return ip6[0] == 0 && ip6[1] == 0 && ip6[2] == 0 && ip6[3] == bpf_htonl(1);
}

/* For a connect from another namespace: 1 to redirect it to the containers
 * listener, 0 to leave it alone (its own loopback), -1 to refuse it (no
 * such listener, or an IPv6 destination: that listener is IPv4). */
static __always_inline int containers_route(const struct airlock_config *cfg,
					    const struct airlock_orig *rec, int v6_dest)
{
	if (loopback(rec->addr))
		return 0;
	if (!cfg->containers_port4 || v6_dest) {
		emit(AIRLOCK_EV_NETNS_REFUSED, rec);
		return -1;
	}
	return 1;
}

/* Is this destination captured: its port, or the address and port? `v6`
 * is a constant at each call site, so each program only reads the context
 * fields its attach type allows (the verifier refuses user_ip6 in
 * connect4 even on a path never taken). */
static __always_inline int captured_dest(struct bpf_sock_addr *ctx, __u16 port, const int v6)
{
	struct airlock_addr_key key = {};

	if (bpf_map_lookup_elem(&AIRLOCK_PORTS, &port))
		return 1;
	if (!v6) {
		v4_mapped(key.addr, ctx->user_ip4);
	} else {
		CTX_IP6(key.addr, ctx->user_ip6);
	}
	key.port = port;
	return bpf_map_lookup_elem(&AIRLOCK_DESTS, &key) != 0;
}

/* Common front half of connect4/6 and sendmsg4/6: is this a socket of a
 * selected process going to a captured destination? */
static __always_inline const struct airlock_config *
captured(struct bpf_sock_addr *ctx, const int v6, struct airlock_orig *rec)
{
	const struct airlock_config *cfg = config();
	__u16 port = bpf_ntohs((__u16)ctx->user_port);

	if (!cfg)
		return 0;
	if (ctx->type != SOCK_STREAM && ctx->type != SOCK_DGRAM)
		return 0;
	if (!captured_dest(ctx, port, v6))
		return 0;
	if (!selected(cfg, rec))
		return 0;
	return cfg;
}

SEC("cgroup/connect4")
int airlock_connect4(struct bpf_sock_addr *ctx)
{
	struct airlock_orig rec = {};
	const struct airlock_config *cfg = captured(ctx, 0, &rec);
	int container = 0;
	__u64 cookie;

	if (!cfg)
		return 1;
	orig4(ctx, &rec);
	if (ctx->type == SOCK_DGRAM) {
		emit(AIRLOCK_EV_UDP_REFUSED, &rec);
		return 0;
	}
	if (ctx->protocol != IPPROTO_TCP)
		return 1;
	if (foreign_netns(cfg, rec.netns)) {
		int route = containers_route(cfg, &rec, 0);

		if (route <= 0)
			return route == 0; /* its own loopback: allowed; else refused */
		container = 1;
	} else {
		rec.netns = 0; /* records name only other namespaces */
	}

	cookie = bpf_get_socket_cookie(ctx);
	if (bpf_map_update_elem(&AIRLOCK_BY_COOKIE, &cookie, &rec, BPF_ANY))
		return 0; /* cannot attribute it: refuse rather than pass unseen */
	if (container) {
		__builtin_memcpy(&ctx->user_ip4, cfg->containers_ip4, 4);
		ctx->user_port = bpf_htons(cfg->containers_port4);
	} else {
		__builtin_memcpy(&ctx->user_ip4, cfg->proxy_ip4, 4);
		ctx->user_port = bpf_htons(cfg->proxy_port4);
	}
	emit(AIRLOCK_EV_REDIRECT, &rec);
	return 1;
}

SEC("cgroup/connect6")
int airlock_connect6(struct bpf_sock_addr *ctx)
{
	struct airlock_orig rec = {};
	const struct airlock_config *cfg = captured(ctx, 1, &rec);
	__u32 ip6[4];
	__u64 cookie;
	int mapped, container = 0;

	if (!cfg)
		return 1;
	orig6(ctx, &rec);
	if (ctx->type == SOCK_DGRAM) {
		emit(AIRLOCK_EV_UDP_REFUSED, &rec);
		return 0;
	}
	if (ctx->protocol != IPPROTO_TCP)
		return 1;

	__builtin_memcpy(ip6, rec.addr, 16);
	mapped = ip6[0] == 0 && ip6[1] == 0 && ip6[2] == bpf_htonl(0xffff);
	if (foreign_netns(cfg, rec.netns)) {
		int route = containers_route(cfg, &rec, !mapped);

		if (route <= 0)
			return route == 0; /* its own loopback: allowed; else refused */
		container = 1;
	} else {
		rec.netns = 0; /* records name only other namespaces */
	}
	if (!mapped && !(cfg->flags & AIRLOCK_F_HAVE_V6)) {
		emit(AIRLOCK_EV_V6_REFUSED, &rec);
		return 0; /* nowhere to send it: refuse rather than bypass */
	}

	cookie = bpf_get_socket_cookie(ctx);
	if (bpf_map_update_elem(&AIRLOCK_BY_COOKIE, &cookie, &rec, BPF_ANY))
		return 0;
	if (container) {
		/* mapped (containers_route refused the rest): its IPv4 listener */
		__u32 ip4;

		__builtin_memcpy(&ip4, cfg->containers_ip4, 4);
		CTX_U32(ctx->user_ip6[3]) = ip4;
		ctx->user_port = bpf_htons(cfg->containers_port4);
	} else if (mapped) {
		/* dual-stack socket to an IPv4 peer: go to the IPv4 listener */
		__u32 ip4;

		__builtin_memcpy(&ip4, cfg->proxy_ip4, 4);
		CTX_U32(ctx->user_ip6[3]) = ip4;
		ctx->user_port = bpf_htons(cfg->proxy_port4);
	} else {
		__builtin_memcpy(ip6, cfg->proxy_ip6, 16);
		CTX_U32(ctx->user_ip6[0]) = ip6[0];
		CTX_U32(ctx->user_ip6[1]) = ip6[1];
		CTX_U32(ctx->user_ip6[2]) = ip6[2];
		CTX_U32(ctx->user_ip6[3]) = ip6[3];
		ctx->user_port = bpf_htons(cfg->proxy_port6);
	}
	emit(AIRLOCK_EV_REDIRECT, &rec);
	return 1;
}

SEC("cgroup/sendmsg4")
int airlock_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct airlock_orig rec = {};

	if (ctx->type != SOCK_DGRAM || !captured(ctx, 0, &rec))
		return 1;
	orig4(ctx, &rec);
	emit(AIRLOCK_EV_UDP_REFUSED, &rec);
	return 0;
}

SEC("cgroup/sendmsg6")
int airlock_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct airlock_orig rec = {};

	if (ctx->type != SOCK_DGRAM || !captured(ctx, 1, &rec))
		return 1;
	orig6(ctx, &rec);
	emit(AIRLOCK_EV_UDP_REFUSED, &rec);
	return 0;
}

/* Could this socket have been redirected? Its peer is then a proxy
 * listener. Also runs for every accept(), so anything else leaves at once
 * (no socket cookie made, no lookup). */
static __always_inline int peer_is_proxy(__u16 port)
{
	const struct airlock_config *cfg = config();

	return cfg && port &&
	       (port == cfg->proxy_port4 || port == cfg->proxy_port6 ||
		port == cfg->containers_port4);
}

SEC("cgroup/getpeername4")
int airlock_getpeername4(struct bpf_sock_addr *ctx)
{
	struct airlock_orig *rec;
	__u64 cookie;
	__u32 ip4;

	if (!peer_is_proxy(bpf_ntohs((__u16)ctx->user_port)))
		return 1;
	cookie = bpf_get_socket_cookie(ctx);
	rec = bpf_map_lookup_elem(&AIRLOCK_BY_COOKIE, &cookie);
	if (!rec)
		return 1;
	__builtin_memcpy(&ip4, &rec->addr[12], 4);
	ctx->user_ip4 = ip4;
	ctx->user_port = bpf_htons(rec->port);
	return 1;
}

SEC("cgroup/getpeername6")
int airlock_getpeername6(struct bpf_sock_addr *ctx)
{
	struct airlock_orig *rec;
	__u64 cookie;
	__u32 ip6[4];

	if (!peer_is_proxy(bpf_ntohs((__u16)ctx->user_port)))
		return 1;
	cookie = bpf_get_socket_cookie(ctx);
	rec = bpf_map_lookup_elem(&AIRLOCK_BY_COOKIE, &cookie);
	if (!rec)
		return 1;
	__builtin_memcpy(ip6, rec->addr, 16);
	CTX_U32(ctx->user_ip6[0]) = ip6[0];
	CTX_U32(ctx->user_ip6[1]) = ip6[1];
	CTX_U32(ctx->user_ip6[2]) = ip6[2];
	CTX_U32(ctx->user_ip6[3]) = ip6[3];
	ctx->user_port = bpf_htons(rec->port);
	return 1;
}

static __always_inline void peer_key(struct bpf_sock_ops *skops,
				     struct airlock_addr_key *key)
{
	if (skops->family == AF_INET) {
		v4_mapped(key->addr, skops->local_ip4);
	} else {
		CTX_IP6(key->addr, skops->local_ip6);
	}
	key->port = (__u16)skops->local_port; /* host order already */
	key->_pad = 0;
}

SEC("sockops")
int airlock_sockops(struct bpf_sock_ops *skops)
{
	struct airlock_addr_key key = {};
	struct airlock_orig *rec;
	__u64 cookie;

	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		if (!peer_is_proxy((__u16)bpf_ntohl(skops->remote_port)))
			return 1;
		cookie = bpf_get_socket_cookie(skops);
		rec = bpf_map_lookup_elem(&AIRLOCK_BY_COOKIE, &cookie);
		if (!rec)
			return 1;
		peer_key(skops, &key);
		bpf_map_update_elem(&AIRLOCK_BY_PEER, &key, rec, BPF_ANY);
		/* ask for state changes so both entries go when it closes */
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
						 BPF_SOCK_OPS_STATE_CB_FLAG);
		return 1;
	case BPF_SOCK_OPS_STATE_CB:
		if (skops->args[1] != BPF_TCP_CLOSE)
			return 1;
		cookie = bpf_get_socket_cookie(skops);
		bpf_map_delete_elem(&AIRLOCK_BY_COOKIE, &cookie);
		peer_key(skops, &key);
		bpf_map_delete_elem(&AIRLOCK_BY_PEER, &key);
		return 1;
	}
	return 1;
}

/* follow_children bookkeeping: a new process (not thread) whose parent is
 * tracked or matches is tracked too. */
SEC("tp_btf/sched_process_fork")
int airlock_fork(__u64 *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx[0];
	struct task_struct *child = (struct task_struct *)ctx[1];
	const struct airlock_config *cfg = config();
	char comm[AIRLOCK_COMM_LEN] = {};
	struct airlock_tracked entry = {}, *ptracked;
	__u32 ptgid, ctgid, zero = 0;
	__u64 *untracked;

	if (!cfg || !(cfg->flags & AIRLOCK_F_FOLLOW_CHILDREN) ||
	    !(cfg->flags & (AIRLOCK_F_FILTER_COMM | AIRLOCK_F_FILTER_UID)))
		return 0;
	ctgid = BPF_CORE_READ(child, tgid);
	if (ctgid != (__u32)BPF_CORE_READ(child, pid))
		return 0; /* a thread, not a process */
	ptgid = BPF_CORE_READ(parent, tgid);
	if (ptgid == cfg->self_tgid)
		return 0;
	/* The child belongs to its parent's agent: the one the parent was
	 * tracked for, else the parent itself. */
	ptracked = bpf_map_lookup_elem(&AIRLOCK_TRACKED, &ptgid);
	if (ptracked) {
		entry.agent = ptracked->agent;
		entry.agent_start = ptracked->agent_start;
	} else {
		process_comm(parent, comm);
		if (!matches(cfg, comm, BPF_CORE_READ(parent, cred, uid.val)))
			return 0;
		entry.agent = ptgid;
		entry.agent_start = BPF_CORE_READ(parent, group_leader, start_boottime);
	}
	entry.born = BPF_CORE_READ(child, start_boottime);
	if (bpf_map_update_elem(&AIRLOCK_TRACKED, &ctgid, &entry, BPF_ANY)) {
		struct airlock_orig rec = {};

		untracked = bpf_map_lookup_elem(&AIRLOCK_UNTRACKED, &zero);
		if (untracked)
			__sync_fetch_and_add(untracked, 1);
		rec.tgid = ctgid;
		rec.pid = ctgid;
		process_comm(parent, rec.comm);
		emit(AIRLOCK_EV_UNTRACKED, &rec);
	}
	return 0;
}

/* do_exit() decrements signal->live before this tracepoint, so 0 means
 * the last thread of the process is exiting: only then is it forgotten
 * (a leader's pthread_exit, or exec from another thread, is not the end). */
SEC("tp_btf/sched_process_exit")
int airlock_exit(__u64 *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx[0];
	__u32 tgid = BPF_CORE_READ(task, tgid);

	if (BPF_CORE_READ(task, signal, live.counter) == 0) {
		bpf_map_delete_elem(&AIRLOCK_TRACKED, &tgid);
		bpf_map_delete_elem(&AIRLOCK_JUDGED, &tgid);
	}
	return 0;
}

/* Voids every remembered "not selected". */
static __always_inline void move_epoch(void)
{
	__u32 zero = 0;
	__u64 *epoch = bpf_map_lookup_elem(&AIRLOCK_EPOCH, &zero);

	if (epoch)
		__sync_fetch_and_add(epoch, 1);
}

/* A process taking a selected name may be selected now, and its
 * descendants with it: whatever was remembered about them no longer holds.
 * `early`: the name is not in place yet (see AIRLOCK_RENAMED_AT). */
static __always_inline void renamed(const char name[AIRLOCK_COMM_LEN], int early)
{
	const struct airlock_config *cfg = config();
	__u32 zero = 0;
	__u64 *at;

	if (!cfg || !(cfg->flags & AIRLOCK_F_FILTER_COMM) ||
	    !bpf_map_lookup_elem(&AIRLOCK_COMMS, name))
		return;
	if (early) {
		at = bpf_map_lookup_elem(&AIRLOCK_RENAMED_AT, &zero);
		if (at)
			*at = bpf_ktime_get_ns();
	}
	move_epoch();
}

/* prctl(PR_SET_NAME) and exec, just before the name changes: a walk
 * racing with it sees the epoch move and remembers nothing, or begins in
 * its grace period and is not trusted. */
SEC("tp_btf/task_rename")
int airlock_rename(__u64 *ctx)
{
	char name[AIRLOCK_COMM_LEN] = {};

	bpf_probe_read_kernel_str(name, sizeof(name), (const char *)ctx[1]);
	renamed(name, 1);
	return 0;
}

/* exec, once the new name is in place: closes the window task_rename
 * leaves between its epoch move and the copy of the name. */
SEC("tp_btf/sched_process_exec")
int airlock_exec(__u64 *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx[0];
	char name[AIRLOCK_COMM_LEN] = {};

	BPF_CORE_READ_STR_INTO(&name, task, comm);
	renamed(name, 0);
	return 0;
}

/* The same for a selected uid (setuid and the like), once the new
 * credentials are in place. */
SEC("fexit/commit_creds")
int airlock_creds(__u64 *ctx)
{
	const struct cred *new = (const struct cred *)ctx[0];
	const struct airlock_config *cfg = config();
	__u32 uid;

	if (!cfg || !(cfg->flags & AIRLOCK_F_FILTER_UID))
		return 0;
	uid = BPF_CORE_READ(new, uid.val);
	if (bpf_map_lookup_elem(&AIRLOCK_UIDS, &uid))
		move_epoch();
	return 0;
}

/* A cgroup was made: userspace looks for capture cgroups among the new
 * ones (`capture.cgroup` globs), and attaches to them at once. Attached
 * only when the capture cgroups include a glob. */
SEC("tp_btf/cgroup_mkdir")
int airlock_cgroup_mkdir(__u64 *ctx)
{
	struct airlock_orig rec = {};

	emit(AIRLOCK_EV_CGROUP, &rec);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
