/* The sandbox (pause) container of the e2e node: holds the pod's namespaces, reaps orphans, and
 * exits on SIGTERM/SIGINT. Built with gcc -static, so its image needs no libraries. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int signo) { (void)signo; _exit(0); }

static void reap(int signo) {
  (void)signo;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  if (getpid() != 1) {
    static const char msg[] = "pause: should be the first process of a pod sandbox\n";
    (void)!write(2, msg, sizeof msg - 1);
  }
  struct sigaction sa = {0};
  sa.sa_handler = stop;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sa.sa_handler = reap;
  sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigaction(SIGCHLD, &sa, NULL);
  for (;;) pause();
}
