#ifndef CCHILD_H
#define CCHILD_H
#include <sys/types.h>

/// Ties the calling process to its parent `parent` (a pid): when the parent ends, even by SIGKILL,
/// this process receives `death_signal` (Linux: prctl(PR_SET_PDEATHSIG); elsewhere nothing is
/// tied). First the signal is set to its default action and every signal is unblocked (a child
/// spawned from a dispatch worker thread inherits that thread's mask, which blocks SIGINT and
/// SIGTERM; a shell's `&` ignores SIGINT); the signal is raised at once if the parent has already
/// gone (this process's parent is no longer `parent`). It comes when the parent *thread* that
/// started this process ends, so that thread must wait for the child. Returns 0, or -errno.
int fn2e_die_with_parent(int death_signal, pid_t parent);

#endif
