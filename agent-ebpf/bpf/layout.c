/* Host program run by build.rs: prints the layout of airlock.h's structs as
 * Rust constants, so the crate's tests can compare them with the mirrors. */
#include <stddef.h>
#include <stdio.h>
#include "airlock.h"

#define SIZE(t) printf("pub(crate) const SIZE_%s: usize = %zu;\n", #t, sizeof(struct t))
#define OFF(t, f) printf("pub(crate) const OFF_%s_%s: usize = %zu;\n", #t, #f, offsetof(struct t, f))

int main(void)
{
	SIZE(airlock_config);
	OFF(airlock_config, self_tgid);
	OFF(airlock_config, flags);
	OFF(airlock_config, proxy_ip4);
	OFF(airlock_config, proxy_ip6);
	OFF(airlock_config, proxy_port4);
	OFF(airlock_config, proxy_port6);
	OFF(airlock_config, max_depth);
	OFF(airlock_config, containers_ip4);
	OFF(airlock_config, containers_port4);
	OFF(airlock_config, host_netns);
	SIZE(airlock_orig);
	OFF(airlock_orig, addr);
	OFF(airlock_orig, port);
	OFF(airlock_orig, family);
	OFF(airlock_orig, pid);
	OFF(airlock_orig, tgid);
	OFF(airlock_orig, uid);
	OFF(airlock_orig, gid);
	OFF(airlock_orig, agent);
	OFF(airlock_orig, cgroup_id);
	OFF(airlock_orig, start_time);
	OFF(airlock_orig, exec_id);
	OFF(airlock_orig, netns);
	OFF(airlock_orig, agent_start);
	OFF(airlock_orig, comm);
	SIZE(airlock_tracked);
	OFF(airlock_tracked, born);
	OFF(airlock_tracked, agent_start);
	OFF(airlock_tracked, agent);
	SIZE(airlock_addr_key);
	OFF(airlock_addr_key, addr);
	OFF(airlock_addr_key, port);
	SIZE(airlock_event);
	OFF(airlock_event, kind);
	OFF(airlock_event, orig);
	printf("pub(crate) const F_FILTER_COMM: u32 = %u;\n", AIRLOCK_F_FILTER_COMM);
	printf("pub(crate) const F_FILTER_UID: u32 = %u;\n", AIRLOCK_F_FILTER_UID);
	printf("pub(crate) const F_FOLLOW_CHILDREN: u32 = %u;\n", AIRLOCK_F_FOLLOW_CHILDREN);
	printf("pub(crate) const F_HAVE_V6: u32 = %u;\n", AIRLOCK_F_HAVE_V6);
	printf("pub(crate) const F_REMEMBER: u32 = %u;\n", AIRLOCK_F_REMEMBER);
	printf("pub(crate) const EV_REDIRECT: u32 = %u;\n", AIRLOCK_EV_REDIRECT);
	printf("pub(crate) const EV_UDP_REFUSED: u32 = %u;\n", AIRLOCK_EV_UDP_REFUSED);
	printf("pub(crate) const EV_V6_REFUSED: u32 = %u;\n", AIRLOCK_EV_V6_REFUSED);
	printf("pub(crate) const EV_UNTRACKED: u32 = %u;\n", AIRLOCK_EV_UNTRACKED);
	printf("pub(crate) const EV_NETNS_REFUSED: u32 = %u;\n", AIRLOCK_EV_NETNS_REFUSED);
	printf("pub(crate) const EV_CGROUP: u32 = %u;\n", AIRLOCK_EV_CGROUP);
	return 0;
}
