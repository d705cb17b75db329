// A child process that dies with its parent (see CChild.h): prctl is variadic, so Swift cannot call it.
#include "CChild.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

int fn2e_die_with_parent(int death_signal, pid_t parent) {
    struct sigaction dfl = {0};
    dfl.sa_handler = SIG_DFL;
    if (sigaction(death_signal, &dfl, NULL) != 0) return -errno;
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0) return -errno;
#ifdef __linux__
    if (prctl(PR_SET_PDEATHSIG, death_signal) != 0) return -errno;
    if (getppid() != parent) raise(death_signal);
#endif
    return 0;
}
