// OpenMP's wait policy can only be chosen before the process starts: libgomp
// reads OMP_WAIT_POLICY in its load-time constructor. Its default (spin ~ms
// after every parallel region) made BERT steps 2–10x slower and erratic on a
// shared 2-core machine, so executables call ensurePassiveOpenMp() first thing
// in main().
#pragma once

namespace galaxy::rt::cpu {

// When neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set, sets
// OMP_WAIT_POLICY=PASSIVE and re-executes /proc/self/exe with the same argv
// (once: GALAXY_OMP_REEXEC guards against loops). Returns normally when nothing
// needs doing or the exec fails (the run then goes on with spinning threads).
void ensurePassiveOpenMp(char **argv);

} // namespace galaxy::rt::cpu
