//! Local host facts: CPUs from /proc/cpuinfo, memory from /proc/meminfo.
