// Package benchutil holds what the benchmarks of several packages share.
//
// On a shared machine the wall clock of a benchmark drifts with the load of
// other processes; the process's CPU time drifts far less, so benchmarks
// report both (as cpu-ns/record or records/cpu-s metrics).
package benchutil
