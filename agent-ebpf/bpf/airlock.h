/* Structures shared between the eBPF programs and userspace.
 *
 * Every struct here has a #[repr(C)] mirror in agent-ebpf/src/shared.rs; the
 * crate's tests compare sizes and field offsets against this header, so a
 * change here that is not mirrored there fails the build's tests.
 * Only fixed-width fields, explicitly padded: the BPF target and the host
 * must agree on layout without relying on compiler padding rules.
 */
#ifndef AIRLOCK_H
#define AIRLOCK_H

#include <linux/types.h>

#define AIRLOCK_COMM_LEN 16

/* airlock_config.flags */
#define AIRLOCK_F_FILTER_COMM     (1u << 0) /* comms map is a selector */
#define AIRLOCK_F_FILTER_UID      (1u << 1) /* uids map is a selector */
#define AIRLOCK_F_FOLLOW_CHILDREN (1u << 2) /* descendants of a match match */
#define AIRLOCK_F_HAVE_V6         (1u << 3) /* an IPv6 listener exists */
#define AIRLOCK_F_REMEMBER        (1u << 4) /* renames are tracked: the ancestry
					     * walk's "no" may be remembered */

/* airlock_event.kind */
#define AIRLOCK_EV_REDIRECT     1 /* a TCP connect was redirected to the proxy */
#define AIRLOCK_EV_UDP_REFUSED  2 /* a UDP connect/sendmsg to a captured port was refused */
#define AIRLOCK_EV_V6_REFUSED   3 /* an IPv6 connect was refused: no IPv6 listener */
#define AIRLOCK_EV_UNTRACKED    4 /* a child of a tracked or selected process could
				   * not be tracked (the map is full): from now on
				   * every process in the cgroup is captured */
#define AIRLOCK_EV_NETNS_REFUSED 5 /* a connect from another network namespace was
				    * refused: no listener for containers (or an
				    * IPv6 destination: that listener is IPv4) */
#define AIRLOCK_EV_CGROUP       6 /* a cgroup was made: userspace looks for new
				   * capture cgroups (orig is empty) */

/* Single-entry array map written by userspace before the programs attach. */
struct airlock_config {
	__u32 self_tgid;           /* airlock's own process: never selected */
	__u32 flags;               /* AIRLOCK_F_* */
	__u8  proxy_ip4[4];        /* IPv4 listener, network order */
	__u8  proxy_ip6[16];       /* IPv6 listener, network order */
	__u16 proxy_port4;         /* host order */
	__u16 proxy_port6;         /* host order */
	__u32 max_depth;           /* ancestors examined for follow_children */
	__u8  containers_ip4[4];   /* listener for other network namespaces
				    * (proxy.listen_containers), network order */
	__u16 containers_port4;    /* host order; 0: none, their connects refused */
	__u16 _pad;
	__u32 _pad2;
	__u64 host_netns;          /* airlock's network namespace (cookie); 0:
				    * unknown, every namespace is treated as it */
};

/* What connect4/6 rewrote, and who asked: the unit the proxy recovers. */
struct airlock_orig {
	__u8  addr[16];            /* original destination; IPv4 as ::ffff:a.b.c.d */
	__u16 port;                /* original destination port, host order */
	__u16 family;              /* socket family: AF_INET or AF_INET6 */
	__u32 pid;                 /* thread id of the caller */
	__u32 tgid;                /* process id of the caller */
	__u32 uid;
	__u32 gid;
	__u32 agent;               /* process id of the selected process whose selection
				    * brought the caller under capture (itself, or the
				    * ancestor that matched); 0: none (no selectors) */
	__u64 cgroup_id;           /* cgroup v2 id of the caller */
	__u64 start_time;          /* the process's start, ns since boot */
	__u64 exec_id;             /* its self_exec_id: moves at every exec */
	__u64 netns;               /* the socket's network namespace (cookie) */
	__u64 agent_start;         /* the agent's start_boottime, ns since boot */
	char  comm[AIRLOCK_COMM_LEN];
};

/* A value of the descendants map (AIRLOCK_TRACKED): when the tracked
 * process started, and the selected process it descends from. */
struct airlock_tracked {
	__u64 born;                /* its start_boottime, ns since boot */
	__u64 agent_start;         /* the agent's start_boottime */
	__u32 agent;               /* the agent's process id */
	__u32 _pad;
};

/* An address and port: the key of the by-peer map (the client's local
 * address as the proxy sees it) and of the destinations map. */
struct airlock_addr_key {
	__u8  addr[16];            /* IPv4 as ::ffff:a.b.c.d */
	__u16 port;                /* host order */
	__u16 _pad;
};

/* Ring-buffer record sent to userspace for logging. */
struct airlock_event {
	__u32 kind;                /* AIRLOCK_EV_* */
	__u32 _pad;
	struct airlock_orig orig;
};

#endif
